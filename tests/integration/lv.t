#!/bin/bash
# vstor lv: LVM logical volumes, in the test VM (the host has no
# device-mapper).  The guest gets an empty virtio-blk disk as its PV and
# runs vstor from the host root; each step prints "rc NAME STATUS" and
# facts as "NAME VALUE" lines, which the host checks.
#
# Checked: create (linear, rounded to extents, thin), list (the table,
# and JSON field by field against lvs's own JSON report), show (by name,
# /dev/mapper, /dev/dm-N and a private device node; not an LV), resize
# (grow, +SIZE, shrink refused without --shrink, done with it, -SIZE),
# snapshot (thin and classic: active, readable, the classic one keeps
# the old data; none without --size for a linear LV), remove (by name and path, dependents refused and removed with -f).
# No previous tenant's data: an LV created on extents that held a
# marker reads back zeros, and so does the space a grown LV gets,
# while plain lvcreate/lvextend on the same extents still show the
# marker (so the check can fail); a new thin LV reads zeros, also beside
# a partial write; a pool that does not zero new chunks is refused.
# In use: an LV open by a process or held by a vbd writer is not
# removed; a second writer is refused, also through another device node
# of the same LV (O_EXCL, which OFD locks alone would miss), and a
# mounted LV is refused as a writable disk.  Bad names, sizes and lvm's
# own failures give clear errors.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"
# shellcheck source=tests/lib/vm.sh
. "$(dirname "$0")/../lib/vm.sh"

vm_requires
requires "$VSTOR" "$VBD_IO" python3 lvm mkfs.ext4 cmp

plan 85

truncate -s 128M "$T/pv.img"

cat >"$T/guest.sh" <<EOF
#!/bin/bash
V=/host$VSTOR
IO=/host$VBD_IO
EOF
cat >>"$T/guest.sh" <<'EOF'
set -u
MiB=1048576
# r NAME CMD...: run CMD, print "rc NAME STATUS" and its output.
r() {
	local name=$1
	shift
	local t0=$EPOCHREALTIME
	"$@" >/tmp/o 2>/tmp/e
	echo "rc $name $? ($(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 )) ms)"
	sed "s|^|out $name: |" /tmp/o
	sed "s|^|err $name: |" /tmp/e
}
pe() { lvs --noheadings -o seg_pe_ranges "$1" | tr -d ' '; }
size() { blockdev --getsize64 "$1"; }
# zeros NAME DEV OFF LEN: "NAME yes" when LEN bytes at OFF read as zeros
# (no process substitution: the guest has no /dev/fd).
zeros() {
	if dd if="$2" bs=64k iflag=skip_bytes,count_bytes skip="$3" \
		count="$4" status=none | cmp -s -n "$4" - /dev/zero; then
		echo "$1 yes"
	else
		echo "$1 no"
	fi
}
# mark DEV LEN: fill the start of DEV with 'X'.
mark() {
	tr '\0' 'X' </dev/zero | head -c "$2" >"$1" && sync
}

pvcreate -q /dev/vda && vgcreate -q -s 1M vgt /dev/vda || exit 1

# Create, with rounding up to the 1 MiB extents.
r create $V lv create vgt lv1 8M
echo "lv1-size $(size /dev/vgt/lv1)"
r create-odd $V lv create -q vgt odd 1500k
echo "odd-size $(size /dev/vgt/odd)"
lvcreate -q -L 16M -T vgt/pool >/dev/null 2>&1
r create-thin $V lv create --thin=pool vgt thin1 32M
echo "thin1-segtype $(lvs --noheadings -o segtype vgt/thin1 | tr -d ' ')"
lvcreate -q -L 4M -Zn -T vgt/nzpool >/dev/null 2>&1
r create-nz $V lv create -T nzpool vgt t2 8M
r create-badname $V lv create vgt 'a/b' 4M
r create-reserved $V lv create vgt x_tmeta 4M
r create-badsize $V lv create vgt ok 12x
r create-nospace $V lv create vgt big 10G
r create-novg $V lv create nosuchvg lv 4M
r create-notpool $V lv create --thin=lv1 vgt t3 4M

# List: the table, and JSON against lvs's report.
r list $V lv list vgt
r list-json $V lv list --output=json vgt
cp /tmp/o /tmp/vstor.json
lvs --reportformat json --units b --nosuffix \
	-o vg_name,lv_name,lv_uuid,lv_attr,lv_size,pool_lv,origin vgt >/tmp/lvs.json
python3 - <<'PY'
import json
mine = json.load(open("/tmp/vstor.json"))
theirs = json.load(open("/tmp/lvs.json"))["report"][0]["lv"]
fields = {"vg", "name", "path", "dm-path", "uuid", "attr", "size", "type",
          "pool", "origin", "active", "open", "thin", "thin-pool", "snapshot"}
bad = []
if len(mine) != len(theirs):
    bad.append("%d LVs, lvs has %d" % (len(mine), len(theirs)))
for t in theirs:
    m = [x for x in mine if x.get("name") == t["lv_name"]]
    if len(m) != 1:
        bad.append("%s missing" % t["lv_name"])
        continue
    m = m[0]
    if set(m) != fields:
        bad.append("%s: fields %s" % (t["lv_name"], sorted(m)))
    want = {"vg": t["vg_name"], "uuid": t["lv_uuid"], "attr": t["lv_attr"],
            "size": int(t["lv_size"]), "pool": t["pool_lv"] or None,
            "origin": t["origin"] or None,
            "path": "/dev/%s/%s" % (t["vg_name"], t["lv_name"]),
            "dm-path": "/dev/mapper/%s-%s" % (t["vg_name"], t["lv_name"])}
    for k, v in want.items():
        if m.get(k) != v:
            bad.append("%s: %s is %r, lvs says %r" % (t["lv_name"], k, m.get(k), v))
types = {x["name"]: (x["type"], x["thin"], x["thin-pool"], x["active"]) for x in mine}
print("json-types", types.get("lv1"), types.get("thin1"), types.get("pool"))
print("json-check", "ok" if not bad else "; ".join(bad))
PY
r list-novg $V lv list nosuchvg

# Show: by name, by device paths, and a disk that is not an LV.
r show $V lv show vgt/lv1
r show-mapper $V lv show --output=json /dev/mapper/vgt-thin1
mm=$(stat -L -c '%t:%T' /dev/vgt/lv1)
dm=$(basename "$(readlink -f /sys/dev/block/$((16#${mm%:*})):$((16#${mm#*:})))")
r show-dm $V lv show /dev/$dm
mknod /tmp/alias b $((16#${mm%:*})) $((16#${mm#*:}))
r show-alias $V lv show /tmp/alias
r show-notlv $V lv show /dev/vda
r show-nolv $V lv show vgt/nosuch

# A new LV on extents that held a marker reads zeros; plain lvcreate on
# the same extents does not.
lvcreate -q -L 8M -n m1 vgt >/dev/null 2>&1 && mark /dev/vgt/m1 $((8 * MiB))
pe1=$(pe vgt/m1)
lvremove -q -y vgt/m1 >/dev/null 2>&1
r create-z1 $V lv create vgt z1 8M
[ "$(pe vgt/z1)" = "$pe1" ] && echo "z1-same-extents yes"
zeros z1-zeros /dev/vgt/z1 0 $((8 * MiB))
mark /dev/vgt/z1 $((8 * MiB))
r remove-z1 $V lv remove vgt/z1
lvcreate -q -L 8M -n ctl vgt >/dev/null 2>&1
[ "$(pe vgt/ctl)" = "$pe1" ] && echo "ctl-same-extents yes"
zeros ctl-zeros /dev/vgt/ctl 0 $((8 * MiB))
lvremove -q -y vgt/ctl >/dev/null 2>&1

# Growing: the new extents held a marker too.
lvcreate -q -L 4M -n gm vgt >/dev/null 2>&1 && mark /dev/vgt/gm $((4 * MiB))
pe2=$(pe vgt/gm)
lvremove -q -y vgt/gm >/dev/null 2>&1
r grow $V lv resize vgt/lv1 +4M
echo "lv1-grown $(size /dev/vgt/lv1)"
pe vgt/lv1 | grep -qF "${pe2#*:}" && echo "grow-same-extents yes"
zeros grow-zeros /dev/vgt/lv1 $((8 * MiB)) $((4 * MiB))
# Control: lvextend alone on marked extents keeps the marker (gctl
# takes the first half of gm2's extents, lvextend the second).
lvcreate -q -L 8M -n gm2 vgt >/dev/null 2>&1 && mark /dev/vgt/gm2 $((8 * MiB))
lvremove -q -y vgt/gm2 >/dev/null 2>&1
lvcreate -q -L 4M -n gctl vgt >/dev/null 2>&1
lvextend -q -L 8M vgt/gctl >/dev/null 2>&1
zeros gctl-zeros /dev/vgt/gctl $((4 * MiB)) $((4 * MiB))
lvremove -q -y vgt/gctl >/dev/null 2>&1

# Thin: a removed thin LV's data does not show in a new one, not even
# in the rest of a chunk that a partial write provisions.
lvcreate -q -V 8M -T vgt/pool -n th1 >/dev/null 2>&1 && mark /dev/vgt/th1 $((8 * MiB))
lvremove -q -y vgt/th1 >/dev/null 2>&1
r create-th2 $V lv create -T pool vgt th2 8M
zeros th2-zeros /dev/vgt/th2 0 $((8 * MiB))
printf 'data' | dd of=/dev/vgt/th2 bs=4096 conv=sync,fsync status=none
zeros th2-chunk /dev/vgt/th2 4096 $((1 * MiB - 4096))

# Resize: shrink only when asked.
r shrink-refused $V lv resize vgt/lv1 10M
echo "lv1-after-refusal $(size /dev/vgt/lv1)"
r shrink $V lv resize --shrink vgt/lv1 10M
echo "lv1-shrunk $(size /dev/vgt/lv1)"
r shrink-rel $V lv resize --shrink /dev/vgt/lv1 -- -2M
echo "lv1-shrunk-rel $(size /dev/vgt/lv1)"
r resize-same $V lv resize vgt/lv1 7500k
r grow-thin $V lv resize /dev/mapper/vgt-thin1 +8M
echo "thin1-grown $(size /dev/vgt/thin1)"

# Snapshots: thin (no size) and classic (--size), active and readable.
mark /dev/vgt/thin1 $MiB
r snap-thin $V lv snapshot vgt/thin1 ts1
cmp -s -n $MiB /dev/vgt/ts1 /dev/vgt/thin1 && echo "ts1-same yes"
echo "ts1-attr $(lvs --noheadings -o lv_attr,origin vgt/ts1 | xargs)"
r snap-classic $V lv snapshot --size=4M /dev/vgt/lv1 cs1
cmp -s /dev/vgt/cs1 /dev/vgt/lv1 && echo "cs1-same yes"
printf 'changed' | dd of=/dev/vgt/lv1 bs=512 conv=sync,fsync status=none
cmp -s -n 512 /dev/vgt/cs1 /dev/vgt/lv1 || echo "cs1-kept yes"
r snap-nosize $V lv snapshot vgt/lv1 bad
r remove-origin $V lv remove vgt/lv1
r remove-cs1 $V lv remove vgt/cs1

# In use: a process holds it open; a vbd writer holds it.
sleep 600 </dev/vgt/lv1 &
sleeper=$!
sleep 0.5
r remove-open $V lv remove vgt/lv1
kill $sleeper
wait $sleeper 2>/dev/null
$IO -f raw --hold 600 /dev/vgt/lv1 >/tmp/holder.out 2>/tmp/holder.err &
holder=$!
for i in $(seq 1 100); do
	grep -q holding /tmp/holder.out && break
	sleep 0.2
done
grep -q holding /tmp/holder.out && echo "holder yes"
r remove-held $V lv remove /dev/vgt/lv1
r second-writer $IO -f raw /dev/vgt/lv1 write 0 4k 0x55
r second-writer-alias $IO -f raw /tmp/alias write 0 4k 0x55
kill $holder
wait $holder 2>/dev/null
r writer-after $IO -f raw /tmp/alias write 0 4k 0x55
mkfs.ext4 -q /dev/vgt/odd && mkdir -p /tmp/mnt && mount /dev/vgt/odd /tmp/mnt &&
	echo "mounted yes"
r mounted-writer $IO -f raw /dev/vgt/odd write 0 4k 0x55
r remove-mounted $V lv remove vgt/odd
umount /tmp/mnt
r unmounted-writer $IO -f raw /dev/vgt/odd write 0 4k 0x55

# Remove: by name and path; dependents.
r remove $V lv remove vgt/lv1
lvs vgt/lv1 >/dev/null 2>&1 || echo "lv1-gone yes"
r remove-path $V lv remove -q /dev/mapper/vgt-odd
r remove-nolv $V lv remove vgt/nosuch
r remove-pool $V lv remove vgt/pool
r remove-pool-f $V lv remove -f vgt/pool
echo "left $(lvs --noheadings -o lv_name vgt | tr -d ' ' | sort | tr '\n' ' ')"
exit 0
EOF

rc=0
VM_TIMEOUT=600 VM_MEM=384 vm_run "$T/guest.sh" \
	-blockdev driver=file,filename="$T/pv.img",node-name=f0 \
	-blockdev driver=raw,file=f0,node-name=d0 \
	-device virtio-blk-pci,drive=d0 || rc=$?
is "$rc/$vm_status" 0/exit "the guest script ran to its end"

has_line() { grep -qxF -- "$1" <<<"$vm_out"; }
# rc_is NAME STATUS DESCRIPTION
rc_is() {
	local got
	got=$(grep -m1 "^rc $1 " <<<"$vm_out" | awk '{print $3}')
	is "${got:-none}" "$2" "$3"
}
# err_like NAME ERE DESCRIPTION: the step's stderr matches.
err_like() {
	like "$(grep "^err $1: " <<<"$vm_out")" "$2" "$3"
}
out_of() { grep "^out $1: " <<<"$vm_out" | sed "s/^out $1: //"; }

rc_is create 0 "lv create makes a linear LV"
like "$(out_of create)" '^Created linear vgt/lv1: 8 MiB, /dev/vgt/lv1$' \
	"lv create says what it made"
check "the LV has the size asked for" has_line "lv1-size 8388608"
check "sizes round up to whole extents" has_line "odd-size 2097152"
rc_is create-thin 0 "lv create --thin makes a thin LV"
check "it is a thin LV" has_line "thin1-segtype thin"
rc_is create-nz 1 "a thin pool that does not zero new chunks is refused"
err_like create-nz 'does not zero new chunks.*lvchange --zero y vgt/nzpool' \
	"the refusal says why and how to fix it"
rc_is create-badname 1 "a name with '/' is refused"
err_like create-badname "LV name: 'a/b' has the character '/'" \
	"the error names the bad character"
rc_is create-reserved 1 "a name with an LVM-reserved part is refused"
rc_is create-badsize 1 "a bad size is refused"
rc_is create-nospace 1 "an LV larger than the free space fails"
err_like create-nospace 'cannot create vgt/big: lvm lvcreate failed.*insufficient free space' \
	"lvm's own reason reaches the user"
rc_is create-novg 1 "a missing VG fails"
rc_is create-notpool 1 "--thin with an LV that is not a pool fails"
err_like create-notpool 'vgt/lv1 is a linear LV, not a thin pool' \
	"the error says what the LV is"

rc_is list 0 "lv list"
like "$(out_of list)" $'^VG +LV +SIZE +TYPE +POOL/ORIGIN +ACTIVE +PATH\n' \
	"the table has its header"
like "$(out_of list)" $'\nvgt +thin1 +32 MiB +thin +pool +yes +/dev/vgt/thin1(\n|$)' \
	"the table shows a thin LV with its pool"
like "$(out_of list)" $'\nvgt +pool +16 MiB +thin-pool +- +open +/dev/vgt/pool(\n|$)' \
	"the table shows the pool in use"
rc_is list-json 0 "lv list --output=json"
is "$(sed -n 's/^json-check //p' <<<"$vm_out")" ok \
	"every LV's JSON fields agree with lvs's JSON report"
is "$(sed -n 's/^json-types //p' <<<"$vm_out")" \
	"('linear', False, False, True) ('thin', True, False, True) ('thin-pool', False, True, True)" \
	"JSON types and flags of a linear LV, a thin LV, a pool"
rc_is list-novg 1 "lv list of a missing VG fails"

rc_is show 0 "lv show VG/LV"
like "$(out_of show)" $'(^|\n)type: linear\n' "lv show tells the type"
rc_is show-mapper 0 "lv show /dev/mapper/VG-LV"
like "$(out_of show-mapper)" '"pool": "pool"' "a thin LV shows its pool"
rc_is show-dm 0 "lv show /dev/dm-N recognises the LV behind a dm node"
like "$(out_of show-dm)" $'(^|\n)name: lv1\n' "it is lv1"
rc_is show-alias 0 "lv show recognises an LV through a private device node"
rc_is show-notlv 2 "lv show of a disk that is not an LV exits 2"
rc_is show-nolv 2 "lv show of a missing LV exits 2"

check "the marker LV and the new LV had the same extents" has_line "z1-same-extents yes"
check "a new LV on extents that held a marker reads zeros" has_line "z1-zeros yes"
check "the control LV had the same extents" has_line "ctl-same-extents yes"
check "plain lvcreate there still shows the marker (the check can fail)" \
	has_line "ctl-zeros no"
rc_is grow 0 "lv resize +SIZE grows"
check "the LV grew by 4 MiB" has_line "lv1-grown 12582912"
check "the grown LV got the marked extents" has_line "grow-same-extents yes"
check "the space a grown LV gets reads zeros" has_line "grow-zeros yes"
check "plain lvextend there still shows the marker" has_line "gctl-zeros no"
rc_is create-th2 0 "a thin LV in a pool that held a marker"
check "the new thin LV reads zeros" has_line "th2-zeros yes"
check "the rest of a partly written new chunk reads zeros" has_line "th2-chunk yes"

rc_is shrink-refused 1 "shrinking without --shrink is refused"
err_like shrink-refused 'pass --shrink' "the refusal says how to shrink"
check "the refused shrink changed nothing" has_line "lv1-after-refusal 12582912"
check "--shrink shrinks" has_line "lv1-shrunk 10485760"
check "--shrink -- -2M shrinks by 2 MiB" has_line "lv1-shrunk-rel 8388608"
rc_is resize-same 0 "a size that rounds to the current one is no change"
check "a thin LV grows, by its /dev/mapper name" has_line "thin1-grown 41943040"

rc_is snap-thin 0 "lv snapshot of a thin LV"
check "the thin snapshot reads what its origin holds" has_line "ts1-same yes"
check "it is active, thin, of thin1, without the skip-activation flag" \
	has_line "ts1-attr Vwi-a-tz-- thin1"
rc_is snap-classic 0 "lv snapshot --size of a linear LV"
check "the classic snapshot reads what its origin holds" has_line "cs1-same yes"
check "it keeps the old data when the origin changes" has_line "cs1-kept yes"
rc_is snap-nosize 1 "a snapshot of a linear LV without --size is refused"
err_like snap-nosize 'vgt/lv1 is a linear LV: only a thin LV has snapshots without a copy-on-write size' \
	"the refusal says why"
rc_is remove-origin 1 "an origin with a classic snapshot is not removed"
err_like remove-origin 'vgt/lv1 has snapshots that would go with it: cs1' \
	"the refusal names the snapshot"
rc_is remove-cs1 0 "the snapshot is removed"

rc_is remove-open 1 "an LV open by a process is not removed"
err_like remove-open 'vgt/lv1 is in use' "the refusal says it is in use"
check "a vbd writer holds the LV" has_line "holder yes"
rc_is remove-held 1 "an LV held by a vbd writer is not removed"
rc_is second-writer 1 "a second writer is refused"
rc_is second-writer-alias 1 "a second writer through another device node is refused (O_EXCL)"
err_like second-writer-alias 'the block device is in use' "the refusal says the device is in use"
rc_is writer-after 0 "a writer is let in once the first one is gone"
check "the LV was mounted" has_line "mounted yes"
rc_is mounted-writer 1 "a mounted LV is refused as a writable disk"
rc_is remove-mounted 1 "a mounted LV is not removed"
rc_is unmounted-writer 0 "once unmounted it opens"

rc_is remove 0 "lv remove VG/LV"
check "the LV is gone" has_line "lv1-gone yes"
rc_is remove-path 0 "lv remove /dev/mapper/VG-LV"
rc_is remove-nolv 1 "removing a missing LV fails"
rc_is remove-pool 1 "a pool with thin LVs is not removed"
err_like remove-pool 'vgt/pool has thin volumes that would go with it: (th2|thin1|ts1), (th2|thin1|ts1), (th2|thin1|ts1);' \
	"the refusal names the thin LVs"
rc_is remove-pool-f 0 "lv remove -f removes a pool with its thin LVs"
is "$(sed -n 's/^left //p' <<<"$vm_out")" "nzpool " "only the other pool is left"
