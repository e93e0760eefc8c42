# Sourced by the tests that run mixreg under mpirun.
# - Sanitizer build (scripts/test.sh: ASAN_OPTIONS=detect_leaks=1): report
#   mixreg's leaks, not OpenMPI's: the suppressions in tests/lsan-mpi.supp,
#   full stack unwinding (OpenMPI's libraries lack frame pointers; the fast
#   unwinder stops at their frames, leaving stacks no suppression matches),
#   MCA components kept loaded at exit (unloaded, their frames have no module
#   name), and no table of suppressions on stderr. Harmless in the release build.
# - Containers often forbid the cross-memory attach OpenMPI uses for large
#   messages between processes of one machine: plain shared-memory copies.
export LSAN_OPTIONS="suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lsan-mpi.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
export OMPI_MCA_mca_base_component_disable_dlclose=1
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
