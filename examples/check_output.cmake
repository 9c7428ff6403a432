# Runs COMMAND (a ;-list) and fails unless it exits 0, its output matches PASS and, when FAIL is set, does not
# match FAIL. ctest's PASS_REGULAR_EXPRESSION alone would ignore the exit code.
#   cmake -DCOMMAND="prog;arg" -DPASS=regex [-DFAIL=regex] -P check_output.cmake
execute_process(COMMAND ${COMMAND} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "'${COMMAND}' exited with ${rc}")
endif()
if(NOT out MATCHES "${PASS}")
  message(FATAL_ERROR "the output does not match '${PASS}'")
endif()
if(FAIL AND out MATCHES "${FAIL}")
  message(FATAL_ERROR "the output matches '${FAIL}'")
endif()
