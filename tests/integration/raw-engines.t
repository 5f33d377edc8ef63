#!/bin/bash
# Every I/O engine, buffered and with O_DIRECT, writes through vbd_submit
# exactly what qemu-io then reads back: 200 random regions (aligned,
# 512-aligned, unaligned, neighbours sharing a sector), zeros everywhere
# else, and the same image whichever engine wrote it.
# shellcheck source=tests/lib/functions.sh
. "$(dirname "$0")/../lib/functions.sh"

requires qemu-img qemu-io awk "$VSTOR" "$VBD_IO"

SEED=20240611
COUNT=200
MAXLEN=300000
SIZE=$((128 << 20))
# ENGINE:[OPTION] pairs; native without O_DIRECT is refused (below).
COMBOS="io_uring: io_uring:--direct native:--direct threads: threads:--direct"

plan $((3 + 5 * 9 + 1))

# qemu-io arguments that read each "OFF LEN 0xPP" line with its pattern.
read_args() {
	qargs=()
	local off len pat
	while read -r off len pat; do
		qargs+=(-c "read -P $pat $off $len")
	done <<<"$1"
}

# The "read" lines qemu-io prints when every one of those reads worked.
expected_reads() {
	awk '{ print "read " $2 "/" $2 " bytes at offset " $1 }' <<<"$1"
}

# "OFF LEN 0x00" for every byte range no region covers.
gaps() {
	sort -n -k1,1 <<<"$1" | awk -v size="$SIZE" '
		BEGIN { pos = 0 }
		$1 > pos { print pos, $1 - pos, "0x00" }
		{ if ($1 + $2 > pos) pos = $1 + $2 }
		END { if (size > pos) print pos, size - pos, "0x00" }'
}

# Native AIO blocks without O_DIRECT: it must be refused, not used.
img=$T/native-buffered.img
run_ok "create native-buffered.img" "$VSTOR" img create -f raw "$img" 16M
run_fails "aio=native without --direct is refused" \
	"$VBD_IO" --aio=native "$img" write 0 4096 0x11
like "$err" "O_DIRECT|[Dd]irect" "the refusal says native needs O_DIRECT"

# The first engine that writes all regions is the reference: its image
# is compared with one qemu-io writes from the same list, and every other
# engine's image with it.
ref_img='' ref='' ref_name=''
for combo in $COMBOS; do
	engine=${combo%%:*} mode=${combo#*:}
	name="$engine${mode:+ $mode}"
	img=$T/$engine${mode:+-direct}.img

	run_ok "$name: create a $SIZE-byte raw image" \
		"$VSTOR" img create -f raw "$img" "$SIZE"
	run_ok "$name: vbd-io writes $COUNT random regions" \
		"$VBD_IO" --aio="$engine" ${mode:+"$mode"} "$img" \
		random "$SEED" "$COUNT" "$MAXLEN"
	regions=$out
	is "$(grep -c '^[0-9]* [0-9]* 0x[0-9a-f][0-9a-f]$' <<<"$regions")" \
		"$COUNT" "$name: $COUNT regions listed"

	read_args "$regions"
	run qemu-io -f raw -r "$img" "${qargs[@]}"
	is "$rc" 0 "$name: qemu-io reads every region"
	unlike "$out" "Pattern verification failed" \
		"$name: every region holds its pattern"
	is "$(grep '^read ' <<<"$out")" "$(expected_reads "$regions")" \
		"$name: qemu-io read all $COUNT regions in full"

	read_args "$(gaps "$regions")"
	run qemu-io -f raw -r "$img" "${qargs[@]}"
	if [ "$rc" -eq 0 ] && [[ $out != *"Pattern verification failed"* ]]
	then
		ok "$name: the $((${#qargs[@]} / 2)) gaps between regions read as zeros"
	else
		not_ok "$name: the gaps between regions read as zeros" \
			"$(grep -B1 'Pattern verification failed' <<<"$out" |
				head -10)"
	fi

	if [ -n "$ref_img" ]; then
		is "$regions" "$ref" "$name: same seed, same regions as $ref_name"
		run qemu-img compare -f raw -F raw "$ref_img" "$img"
		like "$rc:$out" "^0:Images are identical" \
			"$name: qemu-img compare: identical to the $ref_name image"
		continue
	fi
	# The tool must really mix aligned and unaligned requests.
	is "$(awk '$1 % 512 || $2 % 512 { u++ }
		   !($1 % 4096) && !($2 % 4096) { a++ }
		   END { print (u > 20 && a > 20) ? "mixed" : u + 0 "/" a + 0 }' \
		<<<"$regions")" mixed "$name: regions are both aligned and unaligned"
	qemu-img create -f raw "$T/qemu.img" "$SIZE" >/dev/null
	wargs=()
	while read -r off len pat; do
		wargs+=(-c "write -P $pat $off $len")
	done <<<"$regions"
	qemu-io -f raw "$T/qemu.img" "${wargs[@]}" >/dev/null
	run qemu-img compare -f raw -F raw "$T/qemu.img" "$img"
	like "$rc:$out" "^0:Images are identical" \
		"$name: identical to an image qemu-io wrote from the same list"
	if [ "$rc" -eq 0 ]; then
		ref_img=$img ref=$regions ref_name=$name
	fi
done

# The comparison above can fail: another seed gives another image.
img=$T/other-seed.img
"$VSTOR" img create -f raw "$img" "$SIZE" >/dev/null 2>&1
"$VBD_IO" "$img" random $((SEED + 1)) "$COUNT" "$MAXLEN" >/dev/null 2>&1
run qemu-img compare -f raw -F raw "${ref_img:-$T/qemu.img}" "$img"
like "$rc:$out" "^1:Content mismatch" \
	"another seed: qemu-img compare finds the images differ"
