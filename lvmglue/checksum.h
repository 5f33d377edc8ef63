/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Checksums of backups: one 64-bit hash per cluster (XXH3-64, seed 0),
 * and a whole-image checksum that is the hash of the per-cluster hashes
 * laid out as little-endian 64-bit words, in cluster order.  Hashing the
 * hashes rather than the bytes lets the parallel readers of a backup
 * finish clusters in any order and still agree on one number; it also
 * guards the sidecar file that holds the per-cluster hashes.
 *
 * XXH3 was chosen for speed (several GB/s per core): a backup hashes
 * every byte it reads.  It is not a cryptographic hash: it finds
 * corruption and changes, not tampering.
 */
#ifndef VS_LVMGLUE_CHECKSUM_H
#define VS_LVMGLUE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* The name recorded in manifests ("hash" field). */
#define LVM_SUM_ALGORITHM "xxh3-64"

uint64_t lvm_sum(const void *buf, size_t len);

/* The hash of `len` zero bytes, without a buffer of that size. */
uint64_t lvm_sum_zero(size_t len);

/* The whole-image checksum of `n` per-cluster hashes. */
uint64_t lvm_sum_image(const uint64_t *sums, uint64_t n);

#endif
