# The modules' layering: the run configuration (src/config) sits below
# training, I/O and evaluation, so nothing below train/ reaches mixreg/train.h
# or mixreg/experiment.h, directly or through another header, and the config
# module reaches no I/O or evaluation header either.
. "$(dirname "$0")/cli_lib.sh"
SRC=${MIXREG_SOURCE_DIR:?}

python3 - "$SRC" > "$WORK/violations" <<'PY'
import os, re, sys
root = sys.argv[1]
include = re.compile(r'#include "(mixreg/[a-z_]+\.h)"')
def direct(path):
    try:
        return include.findall(open(path).read())
    except OSError:
        return []
closure_cache = {}
def closure(header):
    if header not in closure_cache:
        closure_cache[header] = set()
        found = {header}
        for h in direct(os.path.join(root, "include", header)):
            found |= {h} | closure(h)
        closure_cache[header] = found
    return closure_cache[header]
rules = {
    # module: headers it must not reach
    "core": {"mixreg/train.h", "mixreg/experiment.h", "mixreg/config.h", "mixreg/run.h"},
    "config": {"mixreg/train.h", "mixreg/experiment.h", "mixreg/run.h", "mixreg/evaluate.h", "mixreg/eval_modes.h"},
    "io": {"mixreg/train.h", "mixreg/experiment.h"},
    "eval": {"mixreg/train.h", "mixreg/experiment.h"},
    "data": {"mixreg/train.h", "mixreg/experiment.h", "mixreg/config.h"},
    "nn": {"mixreg/train.h", "mixreg/experiment.h", "mixreg/config.h"},
    "mixup": {"mixreg/train.h", "mixreg/experiment.h", "mixreg/config.h"},
}
for module, banned in rules.items():
    folder = os.path.join(root, "src", module)
    for dirpath, _, files in os.walk(folder):
        for name in files:
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, name)
            reached = set()
            for h in direct(path):
                reached |= closure(h)
            for bad in sorted(reached & banned):
                print(f"{os.path.relpath(path, root)} reaches {bad}")
PY
check '[ $? = 0 ]'
check '[ ! -s "$WORK/violations" ]'
[ -s "$WORK/violations" ] && cat "$WORK/violations" >&2
finish
