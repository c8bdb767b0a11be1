# cmake -DSCDOC=scdoc -DIN=page.7.scd -DOUT=page.7 -P scdoc.cmake
# scdoc reads its page on stdin and writes troff on stdout; this runs it
# without a shell, and leaves no half-written page behind on failure.
get_filename_component(dir "${OUT}" DIRECTORY)
file(MAKE_DIRECTORY "${dir}")
execute_process(COMMAND "${SCDOC}" INPUT_FILE "${IN}" OUTPUT_FILE "${OUT}.tmp"
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  file(REMOVE "${OUT}.tmp")
  message(FATAL_ERROR "scdoc ${IN} failed (${rc}): ${err}")
endif()
file(RENAME "${OUT}.tmp" "${OUT}")
