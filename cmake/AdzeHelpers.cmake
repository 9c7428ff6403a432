include(GoogleTest)

# Small helpers so that each folder's CMakeLists.txt reads as a list of sources.

add_library(adze_warnings INTERFACE)
target_compile_options(adze_warnings INTERFACE -Wall -Wextra -Wno-unused-parameter)
# Kernels use `#pragma omp simd` to allow order-independent reductions to vectorise; -fopenmp-simd honours
# those hints only and links no OpenMP runtime.
target_compile_options(adze_warnings INTERFACE -fopenmp-simd)
install(TARGETS adze_warnings EXPORT adzeTargets)

# adze_library(NAME <folder> SOURCES ... DEPS ...): library adze_<folder>, alias adze::<folder>,
# headers installed under include/adze/<folder>/.
function(adze_library)
  cmake_parse_arguments(A "" "NAME" "SOURCES;DEPS;HEADERS" ${ARGN})
  set(target adze_${A_NAME})
  add_library(${target} ${A_SOURCES})
  add_library(adze::${A_NAME} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${A_NAME})
  # Sources include "folder/x.h" from the project root; installed, the same paths live under include/adze/,
  # so users may write either #include <adze/compress/model.h> or "compress/model.h".
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/adze>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PUBLIC ${A_DEPS} PRIVATE $<BUILD_INTERFACE:adze_warnings>)
  install(TARGETS ${target} EXPORT adzeTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  file(RELATIVE_PATH folder ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  foreach(h ${A_HEADERS})
    get_filename_component(dir ${h} DIRECTORY)
    install(FILES ${h} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/adze/${folder}/${dir})
  endforeach()
endfunction()

# adze_test(NAME <name> SOURCES ... DEPS ... [LABELS ...] [TIMEOUT s]): a GoogleTest program run by ctest.
function(adze_test)
  cmake_parse_arguments(A "" "NAME;TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${A_NAME} ${A_SOURCES})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main adze_warnings)
  target_compile_definitions(${A_NAME} PRIVATE
    ADZE_SOURCE_DIR="${PROJECT_SOURCE_DIR}" ADZE_BINARY_DIR="${PROJECT_BINARY_DIR}")
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 600)
  endif()
  # One ctest entry per TEST(), listed when ctest runs (no work at build time), so ctest -j spreads them.
  gtest_discover_tests(${A_NAME} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${A_TIMEOUT} LABELS "${A_LABELS}")
endfunction()
