/*
 * json.h — reading values out of parsed jsonb objects (json.c).
 */
#ifndef PGEXT_COMMON_JSON_H
#define PGEXT_COMMON_JSON_H

#include "postgres.h"
#include "utils/jsonb.h"

/* Text value of key in a jsonb object container (string, number or bool), or NULL. */
extern char *PgextJsonText(JsonbContainer *obj, const char *key);

/* The string under key, or NULL if absent or not a JSON string. */
extern char *PgextJsonString(JsonbContainer *obj, const char *key);

/*
 * The text of a JSON number (numeric_out form) as an integer: false for a
 * fractional value or more than 18 digits; 1700000000.0 is 1700000000.
 */
extern bool PgextJsonIntegerText(const char *s, int64 *out);

/* Whether key holds a JSON number with an integer value; *out gets it. */
extern bool PgextJsonInteger(JsonbContainer *obj, const char *key, int64 *out);

/* Whether key holds a JSON boolean; *out gets it. */
extern bool PgextJsonBool(JsonbContainer *obj, const char *key, bool *out);

/* The object container stored under key, or NULL if absent or not an object. */
extern JsonbContainer *PgextJsonObject(JsonbContainer *obj, const char *key);

/* Follow a path of keys through nested objects and return the final value as text. */
extern char *PgextJsonPathText(JsonbContainer *obj, const char *const *path, int npath);

#endif							/* PGEXT_COMMON_JSON_H */
