/*
 * digits.h — hex and decimal digits (digits.c).  PG-free: no PostgreSQL
 * header, so the fuzzed signature parser (webhooks/sigparse.c) can use it
 * and be built on its own (test/fuzz/run.sh compiles both).
 */
#ifndef PGEXT_COMMON_DIGITS_H
#define PGEXT_COMMON_DIGITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Value of one hex digit (either case), or -1. */
extern int	pgext_hex_value(char c);

/*
 * Decode len hex digits (an even number, at least 2) into out; returns the
 * number of bytes, or -1 when the input is not hex or does not fit in outmax.
 */
extern int	pgext_hex_decode(const char *s, size_t len, uint8_t *out, size_t outmax);

/*
 * Read exactly len decimal digits (1..max_digits, max_digits <= 18, no sign)
 * into *out; false for anything else.
 */
extern bool pgext_parse_digits(const char *s, size_t len, int max_digits, int64_t *out);

#endif							/* PGEXT_COMMON_DIGITS_H */
