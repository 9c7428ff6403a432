// rl: a HAQ-style agent (Wang et al., CVPR 2019). An actor walks the layers in order and proposes, per layer, a
// continuous action in [0, 1] that picks one of the layer's options (ranked by cost); the finished choice is
// moved within the budget (within_budget, as HAQ lowers bits until the budget holds), measured, and its reward
// −loss / loss(cheapest) − a moving-average baseline is given to every layer's decision. A critic Q(s, a) learns
// that reward; the actor follows the critic's gradient (DDPG's deterministic policy gradient). Each decision is
// judged by its own episode's outcome (discount 0), so no target networks are needed. Exploration: a truncated
// normal around the actor's action, its σ decaying per episode after random warm-up episodes, as in HAQ.
//
// The state of layer l: its position; its share of the dearest and of the cheapest total cost; the table's
// predicted loss of its cheapest and its mean option, normalized; the budget already spent and the budget the
// later layers need at their cheapest, as fractions of the budget; the previous action.
#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "search/scoring.h"
#include "search/searcher.h"

namespace adze {

namespace {

constexpr int64_t kStateSize = 8;

torch::nn::Sequential mlp(int64_t in, int64_t hidden, bool squash) {
  torch::nn::Sequential s(torch::nn::Linear(in, hidden), torch::nn::ReLU(), torch::nn::Linear(hidden, hidden),
                          torch::nn::ReLU(), torch::nn::Linear(hidden, 1));
  if (squash) s->push_back(torch::nn::Sigmoid());
  return s;
}

struct Transition {
  std::array<float, kStateSize> state;
  float action, reward;
};

class Ddpg : public Searcher {
 public:
  Ddpg(int64_t episodes, int64_t warmup, int64_t hidden, double sigma, double decay)
      : episodes_(episodes), warmup_(warmup), hidden_(hidden), sigma_(sigma), decay_(decay) {}

  bool measures() const override { return true; }
  int64_t rounds() const override { return episodes_; }
  SearchResult run(const Problem& p, const SearchOptions& options) const override {
    p.check();
    Scoring scoring(p, options, "rl");
    std::mt19937_64 rng(options.seed);
    torch::manual_seed(options.seed);
    const std::size_t layers = p.layers.size();

    // Each layer's options ranked by cost, cheapest first: the action's scale.
    std::vector<std::vector<int>> ranked(layers);
    double dearest = 0, cheapest_total = 0, loss_scale = 1e-12;
    std::vector<double> max_cost(layers), min_cost(layers), min_loss(layers), mean_loss(layers);
    for (std::size_t l = 0; l < layers; ++l) {
      ranked[l].resize(p.configs[l].size());
      std::iota(ranked[l].begin(), ranked[l].end(), 0);
      std::stable_sort(ranked[l].begin(), ranked[l].end(), [&](int a, int b) {
        return p.cost[l][static_cast<std::size_t>(a)] < p.cost[l][static_cast<std::size_t>(b)];
      });
      max_cost[l] = *std::max_element(p.cost[l].begin(), p.cost[l].end());
      min_cost[l] = *std::min_element(p.cost[l].begin(), p.cost[l].end());
      min_loss[l] = p.loss[l][static_cast<std::size_t>(ranked[l].front())];
      mean_loss[l] = std::accumulate(p.loss[l].begin(), p.loss[l].end(), 0.0) / static_cast<double>(p.loss[l].size());
      dearest += max_cost[l];
      cheapest_total += min_cost[l];
      loss_scale = std::max(loss_scale, min_loss[l]);
    }
    const double budget = std::max(p.budget - p.fixed_cost, 1e-30);
    auto state = [&](std::size_t l, double spent, float previous) {
      double later = 0;
      for (std::size_t k = l + 1; k < layers; ++k) later += min_cost[k];
      return std::array<float, kStateSize>{
          static_cast<float>(layers > 1 ? static_cast<double>(l) / static_cast<double>(layers - 1) : 0.0),
          static_cast<float>(max_cost[l] / std::max(dearest, 1e-30)),
          static_cast<float>(min_cost[l] / std::max(cheapest_total, 1e-30)),
          static_cast<float>(min_loss[l] / loss_scale),
          static_cast<float>(mean_loss[l] / loss_scale),
          static_cast<float>(spent / budget),
          static_cast<float>(later / budget),
          previous};
    };

    const double reference = std::max(std::abs(scoring.loss(within_budget(p, p.cheapest()))), 1e-6);
    auto actor = mlp(kStateSize, hidden_, true), critic = mlp(kStateSize + 1, hidden_, false);
    torch::optim::Adam actor_opt(actor->parameters(), torch::optim::AdamOptions(1e-3));
    torch::optim::Adam critic_opt(critic->parameters(), torch::optim::AdamOptions(1e-2));
    std::vector<Transition> replay;
    double baseline = 0, sigma = sigma_;
    bool have_baseline = false;
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::normal_distribution<double> normal(0.0, 1.0);

    for (int64_t episode = 0; episode < episodes_; ++episode) {
      Choice c(layers);
      std::vector<Transition> steps;
      double spent = 0;
      float previous = 0;
      for (std::size_t l = 0; l < layers; ++l) {
        Transition t{state(l, spent, previous), 0, 0};
        double a;
        if (episode < warmup_) {
          a = unit(rng);
        } else {
          torch::NoGradGuard no_grad;
          const double mean = actor->forward(torch::from_blob(t.state.data(), {1, kStateSize}).clone()).item<double>();
          do a = mean + sigma * normal(rng);  // truncated to [0, 1] by drawing again
          while (a < 0 || a > 1);
        }
        t.action = static_cast<float>(a);
        const auto& order = ranked[l];
        const auto pick = std::min(order.size() - 1, static_cast<std::size_t>(a * static_cast<double>(order.size())));
        c[l] = order[pick];
        spent += p.cost[l][static_cast<std::size_t>(c[l])];
        previous = t.action;
        steps.push_back(t);
      }
      const double reward = -scoring.loss(within_budget(p, c)) / reference;
      baseline = have_baseline ? 0.95 * baseline + 0.05 * reward : reward;
      have_baseline = true;
      for (auto& t : steps) {
        t.reward = static_cast<float>(reward - baseline);
        replay.push_back(t);
      }
      if (episode >= warmup_) {
        sigma *= decay_;
        train(actor, critic, actor_opt, critic_opt, replay, rng, static_cast<int64_t>(layers));
      }
      if (scoring.round_done()) break;
    }
    return scoring.result();
  }

 private:
  static void train(torch::nn::Sequential& actor, torch::nn::Sequential& critic, torch::optim::Adam& actor_opt,
                    torch::optim::Adam& critic_opt, const std::vector<Transition>& replay, std::mt19937_64& rng,
                    int64_t updates) {
    const int64_t batch = std::min<int64_t>(64, static_cast<int64_t>(replay.size()));
    std::uniform_int_distribution<std::size_t> pick(0, replay.size() - 1);
    for (int64_t u = 0; u < updates; ++u) {
      std::vector<float> states, actions, rewards;
      for (int64_t i = 0; i < batch; ++i) {
        const Transition& t = replay[pick(rng)];
        states.insert(states.end(), t.state.begin(), t.state.end());
        actions.push_back(t.action);
        rewards.push_back(t.reward);
      }
      const at::Tensor s = torch::from_blob(states.data(), {batch, kStateSize}).clone();
      const at::Tensor a = torch::from_blob(actions.data(), {batch, 1}).clone();
      const at::Tensor r = torch::from_blob(rewards.data(), {batch, 1}).clone();
      critic_opt.zero_grad();
      const at::Tensor critic_loss = torch::mse_loss(critic->forward(torch::cat({s, a}, 1)), r);
      critic_loss.backward();
      critic_opt.step();
      actor_opt.zero_grad();
      const at::Tensor actor_loss = -critic->forward(torch::cat({s, actor->forward(s)}, 1)).mean();
      actor_loss.backward();
      actor_opt.step();
    }
  }

  int64_t episodes_, warmup_, hidden_;
  double sigma_, decay_;
};

}  // namespace

Registry<Searcher>::Entry rl_entry() {
  struct Options {
    int64_t episodes = 300;
    int64_t warmup = 30;
    int64_t hidden = 64;
    double sigma = 0.5;
    double decay = 0.98;
  };
  return Registry<Searcher>::entry(
      "rl",
      "a HAQ-style DDPG agent over the layers (actor and critic in libtorch); the reward is each measured choice's "
      "loss within the budget",
      OptionList<Options>()
          .add(&Options::episodes, "episodes", "choices the agent makes (one per episode)", between(1, 1e6))
          .add(&Options::warmup, "warmup", "first episodes with random actions", between(1, 1e6))
          .add(&Options::hidden, "hidden", "units of the actor's and critic's two hidden layers", between(1, 4096))
          .add(&Options::sigma, "sigma", "exploration noise at the first trained episode", above(0))
          .add(&Options::decay, "decay", "factor on the noise per trained episode", above(0).at_most(1)),
      [](const Options& o) { return std::make_unique<Ddpg>(o.episodes, o.warmup, o.hidden, o.sigma, o.decay); });
}

}  // namespace adze
