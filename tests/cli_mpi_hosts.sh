# Two hosts simulated on this machine: two network namespaces joined by a
# veth pair, one rank in each, launched by mpirun (running in the first
# namespace) whose rsh agent enters the namespace a "host name" stands for;
# the ranks and mpirun's daemons talk TCP over the veth pair alone. The same
# equivalence as on one machine must hold across them: one epoch of mlp with
# Mixup on 2 ranks equals one process (weights to a relative 1e-5, the
# evaluation's metrics), and eval of the result is the same bytes.
# Skipped where namespaces cannot be made (not root, no `ip`, no permission)
# or mixreg is built without MPI. The namespaces are removed on every exit.
. "$(dirname "$0")/cli_lib.sh"
. "$(dirname "$0")/mpi_sanitizer_env.sh"

skip() {
    echo "skipped: $*"
    finish; exit $?
}
[ -n "${MIXREG_MPIEXEC:-}" ] || skip "mixreg is built without MPI (or no mpirun was found)"
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip > /dev/null || skip "no 'ip' command (iproute2)"

# Names unique to this run; a subnet that exists only between the two namespaces.
NS_A="mxh$$a" NS_B="mxh$$b"
IF_A="mxh$$va" IF_B="mxh$$vb"
NET=10.213.77 ADDR_A=10.213.77.1 ADDR_B=10.213.77.2
cleanup_namespaces() {
    ip netns del "$NS_A" 2> /dev/null
    ip netns del "$NS_B" 2> /dev/null  # deleting a namespace deletes its end of the veth pair, and so the pair
}
trap cleanup_namespaces EXIT
trap 'cleanup_namespaces; exit 130' INT TERM
if ! { ip netns add "$NS_A" && ip netns add "$NS_B" &&
       ip link add "$IF_A" type veth peer name "$IF_B" &&
       ip link set "$IF_A" netns "$NS_A" && ip link set "$IF_B" netns "$NS_B" &&
       ip -n "$NS_A" addr add "$ADDR_A/24" dev "$IF_A" && ip -n "$NS_B" addr add "$ADDR_B/24" dev "$IF_B" &&
       ip -n "$NS_A" link set "$IF_A" up && ip -n "$NS_B" link set "$IF_B" up &&
       ip -n "$NS_A" link set lo up && ip -n "$NS_B" link set lo up; } 2> "$WORK/netns.err"; then
    cleanup_namespaces
    ip link del "$IF_A" 2> /dev/null
    skip "cannot make network namespaces here: $(head -n 1 "$WORK/netns.err")"
fi

# mpirun's rsh agent: "agent HOST COMMAND..." runs COMMAND in HOST's namespace
# (what ssh would do on a real second machine).
AGENT="$WORK/netns-agent.sh"
cat > "$AGENT" <<AGENT
#!/bin/sh
host=\$1; shift
case "\$host" in
    $ADDR_A) ns=$NS_A ;;
    $ADDR_B) ns=$NS_B ;;
    *) echo "netns-agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" sh -c "\$*"
AGENT
chmod +x "$AGENT"
printf '%s slots=1\n%s slots=1\n' "$ADDR_A" "$ADDR_B" > "$WORK/hosts"
# One rank per host, TCP only (no shared memory between the "hosts"), every
# socket on the veth subnet.
two_hosts() {
    timeout 300 ip netns exec "$NS_A" "$MIXREG_MPIEXEC" --allow-run-as-root -np 2 --hostfile "$WORK/hosts" --map-by node \
        --mca plm_rsh_agent "$AGENT" --mca btl tcp,self --mca btl_tcp_if_include "$NET.0/24" \
        --mca oob_tcp_if_include "$NET.0/24" "$@"
}

# The launch itself: rank 1 really is in the second namespace.
two_hosts sh -c 'echo "rank $OMPI_COMM_WORLD_RANK $(ip -o -4 addr show | grep -o "10\.213\.77\.[0-9]*")"' \
    > "$WORK/where.txt" 2> "$WORK/where.err" || fail "mpirun across the namespaces: $(cat "$WORK/where.err")"
check 'grep -qx "rank 0 $ADDR_A" "$WORK/where.txt" && grep -qx "rank 1 $ADDR_B" "$WORK/where.txt"'

DATA="$WORK/tiny"
python3 "$(dirname "$0")/make_tiny_idx.py" "$DATA" 12 640 203 13 || { fail "making the tiny dataset"; finish; exit 1; }
TRAIN=(train --data "idx:$DATA" --model mlp --hidden 32 --epochs 1 --batch-size 64 --mixup-alpha 1 --mixup-mode elem
       --threads 1 --seed 5 --no-tensorboard --log-every 0)
"$BIN" "${TRAIN[@]}" --out "$WORK/one" > "$WORK/one.out" 2>&1 || fail "one process: $(cat "$WORK/one.out")"
two_hosts "$BIN" "${TRAIN[@]}" --out "$WORK/two" > "$WORK/two.out" 2>&1 || fail "two hosts: $(cat "$WORK/two.out")"
PY=${MIXREG_PYTHON:-python3}
[ -x "$PY" ] || PY=python3
check '"$PY" "$(dirname "$0")/compare_weights.py" "$WORK/one/model.safetensors" "$WORK/two/model.safetensors" 1e-5'
check '[ "$(json_get "$WORK/two/result.json" "j[\"processes\"]")" = 2 ]'
check '[ "$(json_get "$WORK/one/result.json" "j[\"plain\"][\"accuracy\"]")" = "$(json_get "$WORK/two/result.json" "j[\"plain\"][\"accuracy\"]")" ]'
check '[ "$(json_get "$WORK/one/result.json" "round(j[\"rescaled\"][\"nll\"], 5)")" = "$(json_get "$WORK/two/result.json" "round(j[\"rescaled\"][\"nll\"], 5)")" ]'

# Evaluation across the hosts: the same bytes as one process.
"$BIN" eval "$WORK/two" --json --threads 1 --batch-size 32 --temperature fit --predictions "$WORK/p1.npy" > "$WORK/e1.json" 2> "$WORK/e1.err"
two_hosts "$BIN" eval "$WORK/two" --json --threads 1 --batch-size 32 --temperature fit --predictions "$WORK/p2.npy" \
    > "$WORK/e2.json" 2> "$WORK/e2.err" || fail "eval on two hosts: $(cat "$WORK/e2.err")"
check '[ -s "$WORK/e1.json" ] && cmp -s "$WORK/e1.json" "$WORK/e2.json"'
check 'cmp -s "$WORK/p1.npy" "$WORK/p2.npy"'

finish
