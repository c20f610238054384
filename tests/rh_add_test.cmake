# rh_add_test(name SOURCES a.c ... [LIBS x ...] [ARGS ...] [LABELS unit|integration|fuzz|tsan ...]
#             [TIMEOUT s] [ENV K=V ...])
# Builds tests/<name> from SOURCES linked with the harness and LIBS, registers it with ctest with
# its labels, a timeout and exit code 77 meaning "skipped" (liburing's test/ convention).
function(rh_add_test name)
    cmake_parse_arguments(T "" "TIMEOUT;COMMAND_TARGET" "SOURCES;LIBS;ARGS;LABELS;ENV" ${ARGN})
    if(NOT T_TIMEOUT)
        set(T_TIMEOUT 60)
    endif()
    if(T_SOURCES)
        add_executable(${name} ${T_SOURCES})
        target_link_libraries(${name} PRIVATE rh_harness ${T_LIBS})
        set(exe $<TARGET_FILE:${name}>)
    else()
        set(exe $<TARGET_FILE:${T_COMMAND_TARGET}>)
    endif()
    add_test(NAME ${name} COMMAND ${exe} ${T_ARGS})
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
                         SKIP_RETURN_CODE 77)
    if(T_ENV)
        set_tests_properties(${name} PROPERTIES ENVIRONMENT "${T_ENV}")
    endif()
endfunction()
