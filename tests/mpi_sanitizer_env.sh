# Sourced by the tests that run mixreg under mpirun, so that the sanitizer
# build (scripts/test.sh: ASAN_OPTIONS=detect_leaks=1) reports mixreg's leaks
# and not OpenMPI's: the suppressions in lsan_openmpi.supp, full stack
# unwinding (OpenMPI's libraries lack frame pointers, and the fast unwinder
# stops at their frames, leaving stacks no suppression can match), and MCA
# components kept loaded at exit (unloaded, their frames have no module name).
# Harmless in the release build.
export LSAN_OPTIONS="suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lsan_openmpi.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
export OMPI_MCA_mca_base_component_disable_dlclose=1
