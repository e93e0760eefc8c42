# The Python package (python/): `pip install` into a fresh virtual
# environment, libmixreg.so found each documented way, and the package's
# numbers against the CLI's own on a small Mixup run: theta statistics equal
# to `mixreg theta --json`, every metric of `mixreg eval --json` (plain,
# rescaled, temperature-scaled, with the temperature fitted on the same
# hold-out) to 1e-6 from eval's --predictions, and the rescaled prediction of
# the run's MLP evaluated in NumPy equal to eval's rescaled probabilities
# (tests/python_package_check.py holds those checks).
. "$(dirname "$0")/cli_lib.sh"

PY=${MIXREG_PYTHON:-$MIXREG_SOURCE_DIR/.venv/bin/python}
if ! "$PY" -c "import numpy" 2> /dev/null; then
    fail "$PY lacks numpy: run scripts/install-deps.sh"
    finish; exit 1
fi
unset MIXREG_LIBRARY  # each way of finding the library is tried below
LIB=$(dirname "$BIN")/libmixreg.so
check '[ -f "$LIB" ]'
# A sanitizer build's library loads into Python only after the sanitizer
# runtimes (Python itself is not instrumented: its leaks are not ours).
SAN_ENV=()
if nm "$BIN" 2> /dev/null | grep -q __asan_init; then
    SAN_ENV=(LD_PRELOAD="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)"
             ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
fi

# pip install ./python into a fresh environment (system packages visible for
# NumPy; no network, no build isolation), from a copy so that the build's
# by-products stay out of the source tree.
BASE=$("$PY" -c 'import sys; print(sys._base_executable)')
"$BASE" -m venv --without-pip --system-site-packages "$WORK/venv" || fail "could not make a virtual environment"
VPY="$WORK/venv/bin/python"
cp -r "$MIXREG_SOURCE_DIR/python" "$WORK/src"
rm -f "$WORK/src/mixreg/"libmixreg.so*
(cd "$WORK" && "$VPY" -m pip install --no-deps --no-build-isolation --no-index ./src) > "$WORK/pip.log" 2>&1 \
    || fail "pip install ./python failed: $(tail -5 "$WORK/pip.log")"
SITE=$(cd "$WORK" && "$VPY" -c 'import mixreg, os; print(os.path.dirname(mixreg.__file__))')
check '[ "${SITE#"$WORK/venv/"}" != "$SITE" ]'

# Where the library is found: $MIXREG_LIBRARY, the system loader's path,
# next to the package; and a clear one-line error where it is not.
where() { (cd "$WORK" && env "${SAN_ENV[@]}" "$VPY" -c 'import mixreg; print(mixreg.library_path())' 2> "$WORK/where.err"); }
check '[ "$(MIXREG_LIBRARY="$LIB" where)" = "$(realpath -s "$LIB")" ]'
check '[ "$(LD_LIBRARY_PATH="$(dirname "$LIB")" where)" = libmixreg.so ]'
if ! ldconfig -p 2> /dev/null | grep -q libmixreg; then  # not installed system-wide: nowhere to be found
    check '! where > /dev/null'
    check 'tail -n 1 "$WORK/where.err" | grep -q "^mixreg.LibraryNotFoundError: mixreg: libmixreg.so not found: set MIXREG_LIBRARY"'
fi
check '! MIXREG_LIBRARY="$WORK/nowhere.so" where > /dev/null && tail -n 1 "$WORK/where.err" | grep -q "not found at MIXREG_LIBRARY=$WORK/nowhere.so"'
# A wheel built with the library copied into the package carries it.
cp -L "$LIB" "$WORK/src/mixreg/libmixreg.so"
(cd "$WORK" && "$VPY" -m pip wheel --no-deps --no-build-isolation --no-index -w "$WORK/wheels" ./src \
    && "$VPY" -m pip install --no-deps --no-index --force-reinstall "$WORK"/wheels/mixreg-*.whl) > "$WORK/wheel.log" 2>&1 \
    || fail "building and installing a wheel failed: $(tail -5 "$WORK/wheel.log")"
check '[ "$(where)" = "$SITE/libmixreg.so" ]'
export MIXREG_LIBRARY="$LIB"

# A small Mixup run on 1x8x8 images, 40% of the labels random: a model that
# is right about two times in three, with an interior temperature.
python3 "$MIXREG_SOURCE_DIR/tests/make_tiny_idx.py" "$WORK/data" 8 160 64 5 || fail "could not write the tiny dataset"
python3 - "$WORK/data" <<'PY'
import random, sys
rng = random.Random(11)
for split in ("train", "t10k"):
    path = f"{sys.argv[1]}/{split}-labels-idx1-ubyte"
    labels = bytearray(open(path, "rb").read())
    for i in range(8, len(labels)):
        if rng.random() < 0.4:
            labels[i] = rng.randrange(4)
    open(path, "wb").write(labels)
PY
mkdir -p "$WORK/trainset"
for f in images-idx3-ubyte labels-idx1-ubyte; do
    cp "$WORK/data/train-$f" "$WORK/trainset/train-$f"
    cp "$WORK/data/train-$f" "$WORK/trainset/t10k-$f"
done
"$BIN" train --data "idx:$WORK/data" --hidden 32 --epochs 2 --batch-size 16 --mixup-alpha 1 --seed 4 --no-tensorboard \
    --threads 2 --out "$WORK/run" > /dev/null 2> "$WORK/train.err" || fail "training failed: $(cat "$WORK/train.err")"
"$BIN" eval "$WORK/run" --json --temperature fit --val-split 0.25 --threads 2 > "$WORK/eval.json" 2> "$WORK/eval.err" \
    || fail "eval failed: $(cat "$WORK/eval.err")"
for mode in plain:off rescaled:on; do
    "$BIN" eval "$WORK/run" --rescale "${mode#*:}" --predictions "$WORK/${mode%:*}.npy" --threads 2 > /dev/null \
        || fail "eval --predictions (${mode%:*}) failed"
    "$BIN" eval "$WORK/run" --data "idx:$WORK/trainset" --rescale "${mode#*:}" --predictions "$WORK/train_${mode%:*}.npy" \
        --threads 2 > /dev/null || fail "eval --predictions of the training split (${mode%:*}) failed"
done
i=0
for args in "--alpha 1" "--alpha 0.2" "--alpha 0" "--alpha 8 --mix-prob 0.5" "--alpha 0.4 --mix-prob 0.8"; do
    # shellcheck disable=SC2086
    "$BIN" theta $args --json > "$WORK/theta-$i.json" || fail "theta $args failed"
    i=$((i + 1))
done

CHECKS=$((CHECKS + 1))
(cd "$WORK" && env "${SAN_ENV[@]}" "$VPY" "$MIXREG_SOURCE_DIR/tests/python_package_check.py" "$WORK") \
    || fail "the Python package disagrees with the CLI"
finish
