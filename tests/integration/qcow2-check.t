#!/bin/bash
# vstor img check against qemu-img check.
#
# Clean images of every kind (v2 and v3, cluster sizes 512 bytes to
# 2 MiB, refcount widths 1 to 64, compressed and zero clusters, internal
# snapshots, a backing file, extended L2 entries) must be found clean,
# with the same JSON and the same human summary as qemu-img prints.
# Images damaged by poking refcounts, refcount table entries and table
# entries must give the same counts and exit status as qemu-img check;
# `-r leaks` and `-r all` must then leave an image that qemu-img check
# finds clean (of leaks, or of everything) and that reads as before.  A
# dirty lazy-refcount image left by a killed qemu-io is repaired when
# vstor opens it for writing.  Random bytes poked into metadata never
# crash the check or the repair.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io python3 "$VSTOR" "$VBD_IO"

SIZE=64M
# name|qemu-img create -o options|qemu-io commands|then snapshots (sN),
# persistent bitmaps (bitmap NAME) and more commands; lists are
# ;-separated
CLEAN=(
	"v2|compat=0.10|write -P 1 0 3M;write -P 2 10M 100k;write -c -P 3 20M 64k|"
	"v3-512|cluster_size=512|write -P 1 0 1M;write -P 2 5M 3k;write -c -P 3 8M 8k;write -z 100k 2k|"
	"rc1-4k|cluster_size=4096,refcount_bits=1|write -P 1 0 1M;write -P 2 30M 7k;write -z 0 8k|"
	"rc2-64k|refcount_bits=2|write -P 1 0 5M;write -c -P 3 20M 1M|"
	"rc8-4k|cluster_size=4096,refcount_bits=8|write -P 1 0 1M;write -c -P 3 8M 64k;discard 0 64k|"
	"rc64-2M|cluster_size=2M,refcount_bits=64|write -P 1 0 5M;write -c -P 3 20M 4M;write -z 0 2M|"
	"lazy|lazy_refcounts=on|write -P 1 0 5M;write -z 1M 1M|"
	"zstd|compression_type=zstd|write -c -P 1 0 5M;write -P 2 1M 4k|"
	"frag-4k|cluster_size=4096|write -P 1 0 4k;write -P 1 1M 4k;write -P 1 8k 4k;write -P 1 4k 4k;write -P 1 3M 1M|"
	"empty||;|"
	"snap-4k|cluster_size=4096|write -P 1 0 2M|s1;write -P 2 1M 2M;write -c -P 5 10M 64k;s2;write -P 3 0 64k"
	"snap-v2|compat=0.10|write -P 1 0 2M|s1;write -P 2 1M 2M"
	"backing|backing_file=base.raw,backing_fmt=raw|write -P 1 0 1M;write -z 3M 1M|"
	"big-512|cluster_size=512|write -P 7 0 12M|"
	"ext-l2|extended_l2=on|write -P 1 0 100k;write -P 2 1M 1k|"
	"bitmaps-4k|cluster_size=4096||bitmap b0;bitmap b1;write -P 1 0 1M;write -P 2 30M 3M"
)
# name|image|pokes (;-separated q2 commands)|what -r all must leave:
#   "same" the content of the undamaged image, "as-read" what qemu read
#   from the damaged one|"untrusted": the refcount table cannot be
#   trusted, so -r leaks must not write anything
DAMAGED=(
	"leak-appended|rc8-4k|leak 3|same"
	"leak-rc1|rc1-4k|leak 2|same"
	"leak-in-use|rc64-2M|rc @host:2M 2|same"
	"leak-and-copied|v3-512|rc @host:0 3;leak 1|same"
	"err-data|rc8-4k|rc @host:0x10000 0|same"
	"err-shared-l2|snap-4k|rc @l2:2M 1|same"
	"err-l1|v3-512|rc @l1 0|same"
	"err-v2-mixed|v2|rc @host:10M 0;rc @rt 0;leak 1|same"
	"err-refblock|rc2-64k|rc @host:0 3;rc @rb:0 0|same"
	"err-lazy-like|lazy|rc @host:0 0;rc @host:1M 0;rc @host:2M 0|same"
	"err-bitmaps|bitmaps-4k|rc @host:0 0;leak 2|same"
	"rt-missing|rc8-4k|rt 0 0|same"
	"rt-reserved|snap-4k|rt 0 +0x100|same|untrusted"
	"rt-outside|rc8-4k|rt 0 0x50000000|same"
	"rt-shared|rc8-4k|rt 0 @hostoff:0x10000|same|untrusted"
	"rt-shrunk|big-512|hdr32 56 1|same"
	"past-eof|rc8-4k|l2 0x10000 +0x10000000|as-read"
	"past-eof-v2|v2|l2 0 +0x10000000|as-read"
	"l2-past-eof|v3-512|l1 0 0x8000000040000000|as-read"
)
HOSTILE=40
plan $((${#CLEAN[@]} * 2 + ${#DAMAGED[@]} * 5 + 6 + 10 + 4 + 10 + 2))

# The poking tool: q2 IMG CMD ARGS.
cat >"$T/q2.py" <<'EOF'
"""q2.py IMG CMD ARGS: read or poke qcow2 metadata.
  rc N [V]       the refcount of host cluster N
  rt I [V]       refcount table entry I
  l1 I [V]       active L1 entry I
  l2 G [V]       the L2 entry of guest offset G
  hdr32 OFF [V]  the big-endian u32 at header offset OFF
  leak N         append N clusters with refcount 1 that nothing uses
  poke SEED N    N random bytes into random metadata clusters
Numbers may be hex, take K/M suffixes, or name a cluster: @host:G (the
data of guest offset G), @hostoff:G (its byte offset), @l2:G (its L2
table), @l1, @rt, @rb:I (refcount block I).  A value +N adds N to what
is there."""
import os, random, struct, sys

MASK = 0x00fffffffffffe00

def num(a):
    mult = {'K': 1 << 10, 'M': 1 << 20}.get(a[-1:], 1)
    return int(a[:-1] if mult > 1 else a, 0) * mult

class Img:
    def __init__(self, path):
        self.f = open(path, 'r+b')
        h = self.read(0, 104)
        self.version, = struct.unpack('>I', h[4:8])
        self.cbits, = struct.unpack('>I', h[20:24])
        self.cs = 1 << self.cbits
        self.l1_size, = struct.unpack('>I', h[36:40])
        self.l1_off, self.rt_off = struct.unpack('>QQ', h[40:56])
        self.rt_clusters, = struct.unpack('>I', h[56:60])
        v3 = self.version >= 3
        self.order = struct.unpack('>I', h[96:100])[0] if v3 else 4
        incompat = struct.unpack('>Q', h[72:80])[0] if v3 else 0
        self.esize = 16 if incompat & 16 else 8
        self.bits = 1 << self.order
        self.rbe = self.cs * 8 // self.bits

    def read(self, off, n):
        self.f.seek(off)
        return self.f.read(n).ljust(n, b'\0')

    def u64(self, off, v=None):
        if v is None:
            return struct.unpack('>Q', self.read(off, 8))[0]
        self.f.seek(off)
        self.f.write(struct.pack('>Q', v & 0xffffffffffffffff))

    def rc(self, n, v=None):
        blk = self.u64(self.rt_off + (n // self.rbe) * 8) & MASK
        if not blk:
            raise SystemExit('no refcount block for cluster %d' % n)
        i = n % self.rbe
        off, sh = blk + i * self.bits // 8, (i * self.bits) % 8
        nbytes, mask = max(1, self.bits // 8), (1 << self.bits) - 1
        raw = int.from_bytes(self.read(off, nbytes), 'big')
        if v is None:
            return (raw >> sh) & mask if self.bits < 8 else raw
        if self.bits < 8:
            v = (raw & ~(mask << sh)) | ((v & mask) << sh)
        self.f.seek(off)
        self.f.write(v.to_bytes(nbytes, 'big'))

    def l2_of(self, g):
        per = self.cs // self.esize
        return self.u64(self.l1_off + g // (self.cs * per) * 8) & MASK

    def l2_loc(self, g):
        per = self.cs // self.esize
        return self.l2_of(g) + (g // self.cs) % per * self.esize

    def end(self):
        return (os.fstat(self.f.fileno()).st_size + self.cs - 1) // self.cs

    def resolve(self, a):
        if not a.startswith('@'):
            return num(a)
        name, _, arg = a[1:].partition(':')
        if name == 'host':
            return (self.u64(self.l2_loc(num(arg))) & MASK) >> self.cbits
        if name == 'hostoff':
            return self.u64(self.l2_loc(num(arg))) & MASK
        if name == 'l2':
            return self.l2_of(num(arg)) >> self.cbits
        if name == 'l1':
            return self.l1_off >> self.cbits
        if name == 'rt':
            return self.rt_off >> self.cbits
        if name == 'rb':
            return self.u64(self.rt_off + num(arg) * 8) >> self.cbits
        raise SystemExit('unknown name ' + a)

    def poke(self, seed, n):
        rnd = random.Random(seed)
        meta = [self.l1_off, self.rt_off]
        for i in range(min(self.l1_size, 64)):
            if self.l2_of(i * self.cs * (self.cs // self.esize)):
                meta.append(self.l2_of(i * self.cs * (self.cs // 8)))
        meta += [self.u64(self.rt_off + i * 8) & MASK for i in range(4)]
        meta = [m for m in meta if m]
        for _ in range(n):
            off = rnd.choice(meta) + rnd.randrange(min(self.cs, 4096))
            self.f.seek(off)
            self.f.write(bytes([rnd.randrange(256)]))

def main():
    img = Img(sys.argv[1])
    cmd, args = sys.argv[2], sys.argv[3:]
    locate = {
        'rt': lambda i: img.rt_off + i * 8,
        'l1': lambda i: img.l1_off + i * 8,
        'l2': img.l2_loc,
    }
    if cmd == 'rc':
        n = img.resolve(args[0])
        if len(args) == 1:
            print(img.rc(n))
        else:
            img.rc(n, img.resolve(args[1]))
    elif cmd in locate:
        off = locate[cmd](img.resolve(args[0]))
        if len(args) == 1:
            print(img.u64(off))
        elif args[1].startswith('+'):
            img.u64(off, img.u64(off) + num(args[1][1:]))
        else:
            img.u64(off, img.resolve(args[1]))
    elif cmd == 'hdr32':
        img.f.seek(num(args[0]))
        img.f.write(struct.pack('>I', num(args[1])))
    elif cmd == 'leak':
        first = img.end()
        img.f.seek(first * img.cs)
        img.f.write(b'\0' * (img.cs * num(args[0])))
        img.f.flush()
        for c in range(first, first + num(args[0])):
            img.rc(c, 1)
    elif cmd == 'poke':
        img.poke(num(args[0]), num(args[1]))
    else:
        raise SystemExit(__doc__)

main()
EOF
q2() { python3 -I -S "$T/q2.py" "$@"; }

# json_eq A B: two check results in JSON are the same but for the file
# name: the same keys with the same values, in qemu-img's order.
json_eq() {
	[ "$(grep -v '"filename"' <<<"$1")" = "$(grep -v '"filename"' <<<"$2")" ]
}

# same_check NAME IMG: vstor and qemu-img agree on IMG: JSON and exit
# status.  Leaves the statuses in $vrc and $qrc.
same_check() {
	local name=$1 img=$2 vout
	run "$VSTOR" img check --output=json "$img"
	vrc=$rc vout=$out
	run qemu-img check --output=json "$img"
	qrc=$rc
	if [ "$vrc" != "$qrc" ]; then
		not_ok "$name" "exit status: vstor $vrc, qemu-img $qrc"
	elif json_eq "$vout" "$out"; then
		ok "$name"
	else
		not_ok "$name" "vstor: $vout" "qemu-img: $out"
	fi
}

# clean NAME IMG [leaks-only]: qemu-img check finds no error (and no
# leak unless leaks-only is given... then no leak but maybe errors).
clean() {
	run qemu-img check "$2"
	if [ "$rc" -eq 0 ] && [[ $out == "No errors were found"* ]]; then
		ok "$1"
	else
		not_ok "$1" "qemu-img check: exit $rc" "$out" "$err"
	fi
}

no_leaks() {
	run qemu-img check --output=json "$2"
	if [ "$rc" -lt 128 ] && ! [[ $out =~ \"leaks\" ]]; then
		ok "$1"
	else
		not_ok "$1" "qemu-img check: exit $rc" "$out"
	fi
}

# same_content NAME A B
same_content() {
	run qemu-img compare -q "$2" "$3"
	if [ "$rc" -eq 0 ]; then
		ok "$1"
	else
		not_ok "$1" "qemu-img compare: exit $rc" "$out" "$err"
	fi
}

# --- Clean images of every kind ------------------------------------

qemu-img create -q -f raw "$T/base.raw" "$SIZE" &&
	qemu-io -f raw -c 'write -P 9 0 64M' "$T/base.raw" >/dev/null ||
	die "cannot make base.raw"

# qio IMG CMDS: the ;-separated qemu-io commands.
qio() {
	local img=$1 cmd args=()
	IFS=';' read -ra cmds <<<"$2"
	for cmd in "${cmds[@]}"; do
		[ -n "$cmd" ] && args+=(-c "$cmd")
	done
	[ ${#args[@]} -eq 0 ] || qemu-io -f qcow2 "${args[@]}" "$img" >/dev/null
}

make_clean() {
	local name opts cmds snaps img s
	IFS='|' read -r name opts cmds snaps <<<"$1"
	img=$T/$name.qcow2
	(cd "$T" && qemu-img create -q -f qcow2 ${opts:+-o "$opts"} \
		"$name.qcow2" "$SIZE") || return 1
	qio "$img" "$cmds" || return 1
	# Each snapshot, then the writes after it.
	while [ -n "$snaps" ]; do
		s=${snaps%%;*}
		snaps=${snaps#"$s"}
		snaps=${snaps#;}
		case $s in
		s[0-9]*) qemu-img snapshot -c "$s" "$img" || return 1 ;;
		"bitmap "*)
			qemu-img bitmap --add "$img" "${s#bitmap }" || return 1
			;;
		*) qio "$img" "$s" || return 1 ;;
		esac
	done
}

for c in "${CLEAN[@]}"; do
	name=${c%%|*}
	make_clean "$c" || die "cannot make $name"
	run "$VSTOR" img info "$T/$name.qcow2"
	if [[ $err =~ "not supported" ]]; then
		skip 2 "$name: vstor cannot open it ($err)"
		continue
	fi
	same_check "$name: same JSON and exit status as qemu-img" \
		"$T/$name.qcow2"
	if [ "$vrc" -ne 0 ]; then
		not_ok "$name: clean" "exit $vrc"
		continue
	fi
	run "$VSTOR" img check "$T/$name.qcow2"
	vout=$out
	run qemu-img check "$T/$name.qcow2"
	is "$vout" "$out" "$name: same human output as qemu-img"
done

# --- Damaged images: the same findings, then repairs -----------------

for d in "${DAMAGED[@]}"; do
	IFS='|' read -r name base pokes expect table <<<"$d"
	img=$T/d-$name.qcow2
	cp "$T/$base.qcow2" "$img"
	IFS=';' read -ra cmds <<<"$pokes"
	for cmd in "${cmds[@]}"; do
		# shellcheck disable=SC2086 # a command and its words
		q2 "$img" $cmd || die "$name: cannot poke '$cmd'"
	done
	same_check "$name: same findings as qemu-img" "$img"
	if [ "$vrc" -eq 0 ]; then
		not_ok "$name: the damage shows" "vstor found nothing"
	else
		ok "$name: the damage shows (exit $vrc)"
	fi
	ref=$T/$base.qcow2
	[ "$expect" = same ] || ref=$img

	cp "$img" "$T/leaks.qcow2"
	run "$VSTOR" img check -r leaks "$T/leaks.qcow2"
	if [ "$table" = untrusted ]; then
		check "$name: -r leaks writes nothing through a bad table" \
			cmp -s "$img" "$T/leaks.qcow2"
	else
		no_leaks "$name: -r leaks leaves no leak" "$T/leaks.qcow2"
	fi

	cp "$img" "$T/all.qcow2"
	run "$VSTOR" img check -r all "$T/all.qcow2"
	if [ "$rc" -eq 0 ]; then
		clean "$name: -r all, then qemu-img check is clean" \
			"$T/all.qcow2"
	else
		not_ok "$name: -r all" "exit $rc" "$out" "$(head -3 <<<"$err")"
	fi
	same_content "$name: the content is unchanged" "$ref" "$T/all.qcow2"
done

# --- Repair output, as qemu-img prints it ----------------------------

cp "$T/rc8-4k.qcow2" "$T/r.qcow2"
q2 "$T/r.qcow2" leak 3
cp "$T/r.qcow2" "$T/rq.qcow2"
cp "$T/r.qcow2" "$T/rj.qcow2"
cp "$T/r.qcow2" "$T/rqj.qcow2"
run "$VSTOR" img check "$T/r.qcow2"
is "$rc" 3 "leaks only: exit status 3"
like "$out" $'\n3 leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n' \
	"leaks only: the summary says so"
run "$VSTOR" img check -r leaks "$T/r.qcow2"
vout=$out
like "$vout" $'^The following inconsistencies were found and repaired:\n\n    3 leaked clusters\n    0 corruptions\n\nDouble checking the fixed image now...\nNo errors were found' \
	"-r leaks: what was repaired, then the second check"
run qemu-img check -r leaks "$T/rq.qcow2"
is "$vout" "$out" "-r leaks: the same human output as qemu-img"
run "$VSTOR" img check -r leaks --output=json "$T/rj.qcow2"
vout=$out
run qemu-img check -r leaks --output=json "$T/rqj.qcow2"
check "-r leaks: the same JSON as qemu-img (leaks-fixed)" \
	json_eq "$vout" "$out"
run "$VSTOR" img check -q "$T/d-err-data.qcow2"
is "$rc:$out" "2:" "-q: nothing on stdout, exit status 2 for errors"

# --- A crash with lazy refcounts --------------------------------------

img=$T/dirty.qcow2
qemu-img create -q -f qcow2 -o lazy_refcounts=on,cluster_size=4096 "$img" \
	"$SIZE" || die "cannot make dirty.qcow2"
# (In a subshell, so that the shell does not report the kill.)
(qemu-io -f qcow2 -c 'write -P 0x11 0 1M' -c 'write -P 0x12 5M 64k' \
	-c 'sigraise 9' "$img"; :) >/dev/null 2>&1
# flag IMG KEY: true or false, as qemu-img info says.
flag() {
	qemu-img info -U --output=json "$1" |
		sed -n "s/^ *\"$2\": \([a-z]*\),*\$/\1/p"
}
dirty_flag() { flag "$1" dirty-flag; }
is "$(dirty_flag "$img")" true "qemu-io killed: the image is dirty"
cp "$img" "$T/dirty0.qcow2"
cp "$img" "$T/dirty1.qcow2"
same_check "dirty: the same findings as qemu-img" "$img"
run "$VBD_IO" -f qcow2 "$img" write 2M 64k 0x13
is "$rc" 0 "dirty: vstor opens it for writing (repairing it) and writes"
clean "dirty: then qemu-img check is clean" "$img"
is "$(dirty_flag "$img")" false "dirty: the dirty bit is clear after close"
run qemu-io -r -f qcow2 -c 'read -q -P 0x11 0 1M' -c 'read -q -P 0x12 5M 64k' \
	-c 'read -q -P 0x13 2M 64k' "$img"
is "$rc:$out" "0:" "dirty: old and new data read back"
run "$VSTOR" img check -r all "$T/dirty1.qcow2"
is "$rc" 0 "dirty: -r all repairs it"
clean "dirty: after -r all qemu-img check is clean" "$T/dirty1.qcow2"
is "$(dirty_flag "$T/dirty1.qcow2")" false "dirty: -r all clears the dirty bit"
same_content "dirty: -r all changes no data" "$T/dirty0.qcow2" \
	"$T/dirty1.qcow2"

# --- The corrupt bit -----------------------------------------------------

corrupt_flag() { flag "$1" corrupt; }
cp "$T/rc8-4k.qcow2" "$T/corrupt.qcow2"
printf '\x02' | dd of="$T/corrupt.qcow2" bs=1 seek=79 conv=notrunc 2>/dev/null
is "$(corrupt_flag "$T/corrupt.qcow2")" true "corrupt bit set"
run "$VBD_IO" -f qcow2 "$T/corrupt.qcow2" write 0 4k 0x21
is "$rc" 1 "corrupt: vstor refuses to write it"
run "$VSTOR" img check -r all "$T/corrupt.qcow2"
is "$rc" 0 "corrupt: -r all finds nothing wrong"
is "$(corrupt_flag "$T/corrupt.qcow2")" false "corrupt: -r all clears the bit"

# --- Usage and errors ------------------------------------------------------

run "$VSTOR" img check "$T/nonexistent.qcow2"
like "$rc:$err" "^1:.*nonexistent.qcow2" "a missing file: exit 1, named"
run "$VSTOR" img check "$T/base.raw"
like "$rc:$err" "^63:.*does not support checks" \
	"raw: exit 63, 'does not support checks' (as qemu-img)"
run qemu-img check "$T/base.raw"
is "$rc" 63 "qemu-img agrees on raw"
run_fails "-r bogus is refused" "$VSTOR" img check -r bogus "$T/v2.qcow2"
run_fails "-U with -r is refused" "$VSTOR" img check -U -r all "$T/v2.qcow2"
run_fails "--output=xml is refused" "$VSTOR" img check --output=xml \
	"$T/v2.qcow2"
run_fails "no FILE is refused" "$VSTOR" img check
run "$VSTOR" img check -f raw "$T/v2.qcow2"
is "$rc" 63 "-f raw on a qcow2 file: exit 63"
run "$VSTOR" img check -U "$T/v2.qcow2"
is "$rc" 0 "-U: a read-only check"
run "$VSTOR" help img check
like "$out" "Exit status:.*63" "help text lists the exit statuses"

# --- Hostile bytes ---------------------------------------------------------

crashes=()
for ((i = 0; i < HOSTILE; i++)); do
	base=snap-4k
	[ $((i % 2)) -eq 0 ] && base=v3-512
	cp "$T/$base.qcow2" "$T/h.qcow2"
	q2 "$T/h.qcow2" poke "$i" 8
	for mode in check repair; do
		if [ $mode = check ]; then
			run "$VSTOR" img check "$T/h.qcow2"
		else
			run "$VSTOR" img check -r all "$T/h.qcow2"
		fi
		# (A sanitizer build reports with exit status 1.)
		if [ "$rc" -ge 4 ] || [[ $err =~ Sanitizer|runtime\ error ]]; then
			crashes+=("$mode seed $i: exit $rc")
		fi
	done
done
is "${crashes[*]}" "" "random bytes in metadata ($HOSTILE images): no crash"
run "$VSTOR" img check -r all "$T/h.qcow2"
like "$rc" "^[0-3]$" "the last one, repaired again: an exit status, no crash"
