/**
 * Byte-for-byte cases against redis-server (test/app/redis-compat.test.ts): SORT, SORT_RO and the
 * geo commands.
 *
 * SORT compares everything whose order Redis fixes: lists, sorted sets (Redis sorts them from its
 * hash table, but numeric ties break by the element and ALPHA without BY compares elements, so the
 * result is total), sets sorted by value, `BY nosort` on lists and sorted sets, and on intsets
 * (their order is numeric on both sides). ALPHA with BY ties and `BY nosort` on other sets follow a
 * hash table's order in Redis: those are in test/app/kv-sort-geo.test.ts.
 *
 * GEO cases compare positions, hashes, distances (as "%.4f") and searches with their order, ties
 * of equal distances included (glibc's stable qsort, and Redis's pqsort under COUNT), and the
 * stored results' scores (STOREDIST's full 17 digits).
 */

const words = (line: string): string[] => line.split(" ");

/** A deterministic generator, so the lists are the same on every run. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const SORT: readonly string[] = [
  // Lists: numeric, ALPHA, DESC, LIMIT, errors.
  "RPUSH l 3 1 2 10 -5 2.5 1e2 0x10",
  "SORT l",
  "SORT l DESC",
  "SORT l ASC",
  "SORT l LIMIT 0 3",
  "SORT l LIMIT 2 3",
  "SORT l LIMIT -5 2",
  "SORT l LIMIT 5 -1",
  "SORT l LIMIT 7 10",
  "SORT l LIMIT 8 10",
  "SORT l LIMIT 100 1",
  "SORT l LIMIT 0 0",
  "SORT l LIMIT 1 0",
  "SORT l DESC LIMIT 1 2",
  "SORT l ALPHA",
  "SORT l ALPHA DESC",
  "SORT l alpha desc limit 1 3",
  "SORT l LIMIT 1",
  "SORT l LIMIT a 1",
  "SORT l LIMIT 1 b",
  "SORT l LIMIT 1 1.5",
  "SORT l LIMIT 99999999999999999999 1",
  "SORT l LIMIT 1 9223372036854775807",
  "SORT l LIMIT 2 9223372036854775807",
  "SORT l BY nosort LIMIT 2 9223372036854775807",
  "SORT l LIMIT -9223372036854775808 2",
  "SORT l BOGUS",
  "SORT l DESC BOGUS",
  "SORT l GET",
  "SORT l BY",
  "SORT l STORE",
  "SORT",
  "SORT_RO",
  "RPUSH bad 1 x 2",
  "SORT bad",
  "SORT bad ALPHA",
  "SORT bad DESC LIMIT 0 1",
  "SORT bad BY nosort",
  "RPUSH bad2 1 nan",
  "SORT bad2",
  "RPUSH bad3 1 1e400",
  "SORT bad3",
  "RPUSH bad4 1 1e-400",
  "SORT bad4",
  // Redis tests errno for ERANGE without clearing it first, so after an overflow every later
  // numeric SORT of a non-integer fails, until something clears errno: a ZADD's score parsing
  // does. Ours fails only for the value that overflowed.
  "ZADD errno 1 clear",
  "RPUSH ok1 5 inf -inf -INFINITY 0 -0 +3 ' 4' 1e-300",
  "SORT ok1",
  "SORT ok1 DESC",
  "RPUSH spaces 1 x",
  "LSET spaces 1 ' 7'",
  "SORT spaces",
  "RPUSH trail 1 x",
  "LSET trail 1 '7 '",
  "SORT trail",
  "SORT trail ALPHA",
  "RPUSH dup 3 3 1 1 2 2 03 3.0",
  "SORT dup",
  "SORT dup DESC",
  "SORT dup ALPHA",
  "SORT dup LIMIT 1 4",
  // BY nosort keeps a list's order, reversed by DESC, with LIMIT.
  "SORT l BY nosort",
  "SORT l BY nosort DESC",
  "SORT l BY nosort LIMIT 2 3",
  "SORT l BY nosort DESC LIMIT 2 3",
  "SORT l BY nosort LIMIT 10 3",
  "SORT l BY nosort DESC LIMIT 0 0",
  "SORT l BY nosort LIMIT -2 -1",
  "SORT bad BY nosort",
  "SORT l BY nosort GET #",
  // Missing keys and wrong types.
  "SORT missing",
  "SORT missing DESC LIMIT 0 1",
  "SORT missing BY nosort",
  "SORT_RO missing",
  "SET str x",
  "SORT str",
  "SORT_RO str",
  "SORT str LIMIT a b",
  "HSET h f v",
  "SORT h",
  "XADD stream 1-1 a b",
  "SORT stream",
  // Sets: sorted by value (total orders).
  "SADD s 5 3 9 -1 12",
  "SORT s",
  "SORT s DESC",
  "SORT s ALPHA",
  "SORT s LIMIT 1 2",
  "SORT s BY nosort",
  "SORT s BY nosort LIMIT 1 3",
  "SORT s BY nosort DESC",
  "SADD sw banana apple cherry date",
  "SORT sw ALPHA",
  "SORT sw ALPHA DESC LIMIT 0 2",
  "SORT sw",
  "SORT_RO sw ALPHA",
  // Sorted sets: by the member's value, or kept in score order with BY nosort.
  "ZADD z 1 30 2 10 3 20 4 5",
  "SORT z",
  "SORT z DESC",
  "SORT z BY nosort",
  "SORT z BY nosort DESC",
  "SORT z BY nosort LIMIT 1 2",
  "SORT z BY nosort DESC LIMIT 1 2",
  "SORT z BY nosort LIMIT 3 5",
  "SORT z BY nosort LIMIT 4 5",
  "SORT z BY nosort DESC LIMIT 9 1",
  "ZADD zw 1 c 1 a 2 b",
  "SORT zw ALPHA",
  "SORT zw",
  "SORT zw BY nosort",
  // BY weights, GET patterns, hash fields.
  "DEL l",
  "RPUSH l 1 2 3 4",
  "MSET w_1 40 w_2 10 w_3 30 w_4 20",
  "MSET n_1 one n_2 two n_3 three n_4 four",
  "HSET o_1 name alice age 30",
  "HSET o_2 name bob age 25",
  "HSET o_3 name carol",
  "SORT l BY w_*",
  "SORT l BY w_* DESC",
  "SORT l BY w_* GET n_*",
  "SORT l BY w_* GET # GET n_*",
  "SORT l BY w_* GET n_* GET # GET missing_* GET nostar",
  "SORT l BY w_* LIMIT 1 2 GET n_*",
  "SORT l BY n_* ALPHA",
  "SORT l BY n_* ALPHA DESC",
  "SORT l BY n_* ALPHA GET n_*",
  "SORT l BY n_*",
  "SORT l BY o_*->age",
  "SORT l BY o_*->age GET o_*->name",
  "SORT l BY o_*->name ALPHA GET o_*->name GET #",
  "SORT l GET o_*->name GET o_*->age GET o_*->missing",
  "SORT l GET o_*->",
  "SORT l GET o_-> GET #",
  "SORT l GET n_*->x",
  "SORT l GET h",
  "SORT l BY missing_*",
  "SORT l BY missing_* DESC",
  "SORT l BY h_* GET #",
  "SET w_x 5",
  "RPUSH lx x 1",
  "SORT lx BY w_*",
  "SORT l BY w_*nosuch",
  "SORT l BY *",
  "SORT l BY w_* BY nosort",
  "SORT l BY nosort BY w_*",
  "SORT l GET w_* GET n_* LIMIT 0 2 DESC",
  "SET 1 one",
  "SET 2 two",
  "SORT l GET *",
  "SORT l BY * ALPHA GET *",
  "SORT s BY w_*",
  "SORT z BY w_* GET #",
  // BY with equal weights on a list: the stable sort keeps the list's order.
  "RPUSH eq a b c d e f g h i",
  "MSET we_a 1 we_b 2 we_c 1 we_d 2 we_e 1 we_f 2 we_g 1 we_h 2",
  "SORT eq BY we_*",
  "SORT eq BY we_* DESC",
  "SORT eq BY we_* ALPHA",
  "SORT eq BY we_* ALPHA DESC",
  "SORT eq BY nothing_* ALPHA",
  "SORT eq BY we_* LIMIT 0 4",
  "SORT eq BY we_* ALPHA LIMIT 0 4",
  "SORT eq BY we_* ALPHA LIMIT 3 3",
  "SORT eq BY we_* ALPHA DESC LIMIT 2 4",
  "SORT eq BY nothing_* ALPHA LIMIT 1 5",
  // STORE: a list; an empty result deletes the destination; SORT_RO refuses STORE.
  "SORT l BY w_* STORE dst",
  "LRANGE dst 0 -1",
  "TYPE dst",
  "SORT l BY w_* GET n_* GET missing_* STORE dst",
  "LRANGE dst 0 -1",
  "SORT l STORE dst STORE dst2",
  "EXISTS dst dst2",
  "LRANGE dst2 0 -1",
  "SORT missing STORE dst2",
  "EXISTS dst2",
  "SORT l LIMIT 0 0 STORE dst",
  "EXISTS dst",
  "SET dst x",
  "EXPIRE dst 100",
  "SORT l STORE dst",
  "TTL dst",
  "TYPE dst",
  "SORT l STORE l",
  "LRANGE l 0 -1",
  "SORT bad STORE dst",
  "LRANGE dst 0 -1",
  "SORT_RO l STORE dst",
  "SORT_RO l BY w_* GET n_*",
  "SORT_RO l LIMIT 1 2 DESC",
  "SORT s BY nosort STORE dst",
  "LRANGE dst 0 -1",
  "SORT sw BY nosort STORE dst",
  "LRANGE dst 0 -1",
  "SORT sw BY nosort DESC LIMIT 1 2 STORE dst",
  "LRANGE dst 0 -1",
  "SORT z BY nosort DESC STORE dst",
  "LRANGE dst 0 -1",
  "SORT str STORE dst",
  "LRANGE dst 0 -1",
  "SORT l STORE str",
  "TYPE str",
];

const GEO: readonly string[] = [
  // GEOADD: options, errors, the scores it stores.
  "GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
  "ZRANGE Sicily 0 -1 WITHSCORES",
  "GEOADD Sicily 13.361389 38.115556 Palermo",
  "GEOADD Sicily CH 13.361389 38.115556 Palermo",
  "GEOADD Sicily CH 13.361390 38.115556 Palermo",
  "GEOADD Sicily NX 13.5 38.1 Palermo 14 37 Agrigento",
  "GEOADD Sicily XX 13.5 38.1 Palermo 14 37 Enna",
  "GEOADD Sicily XX CH 13.361389 38.115556 Palermo",
  "GEOADD Sicily nx ch 1 1 x",
  "ZREM Sicily x",
  "ZRANGE Sicily 0 -1 WITHSCORES",
  "GEOADD Sicily NX XX 1 2 a",
  "GEOADD Sicily 1 2",
  "GEOADD Sicily 1 2 a 3",
  "GEOADD Sicily CH CH CH",
  "GEOADD Sicily GT 1 2 a",
  "GEOADD Sicily LT 1 2 a 3 4",
  "GEOADD Sicily 181 0 a",
  "GEOADD Sicily -180.0001 0 a",
  "GEOADD Sicily 0 85.05112879 a",
  "GEOADD Sicily 0 -85.06 a",
  "GEOADD Sicily 1e300 -1e300 a",
  "GEOADD Sicily inf 0 a",
  "GEOADD Sicily -inf 0 a",
  "GEOADD Sicily 0.0078125 90 a",
  "GEOADD Sicily -0.0000001 -90 a",
  "GEOADD Sicily x 0 a",
  "GEOADD Sicily 0 y a",
  "GEOADD Sicily 1 1 ok 1 x bad",
  "ZSCORE Sicily ok",
  "GEOADD Sicily nan 0 a",
  "GEOADD Sicily 1e400 0 a",
  "GEOADD Sicily ' 1' 0 a",
  "GEOADD edges 180 85.05112878 ne -180 -85.05112878 sw 0 0 origin -0 -0 negzero",
  "GEOADD edges 179.9999999 85.0511287 ne2 -179.9999999 -85.0511287 sw2",
  "ZRANGE edges 0 -1 WITHSCORES",
  "GEOPOS edges ne sw origin negzero ne2 sw2",
  "GEOHASH edges ne sw origin negzero ne2 sw2",
  "SET str x",
  "GEOADD str 1 1 a",
  "GEOADD str 1 1000 a",
  "GEOADD",
  "GEOADD k 1 2",
  // GEOPOS, GEOHASH, GEODIST.
  "GEOPOS Sicily Palermo Catania NonExisting Agrigento",
  "GEOPOS Sicily",
  "GEOPOS missing a b",
  "GEOPOS str a",
  "GEOPOS",
  "GEOHASH Sicily Palermo Catania NonExisting",
  "GEOHASH Sicily",
  "GEOHASH missing a",
  "GEOHASH str a",
  "GEODIST Sicily Palermo Catania",
  "GEODIST Sicily Palermo Catania m",
  "GEODIST Sicily Palermo Catania km",
  "GEODIST Sicily Palermo Catania KM",
  "GEODIST Sicily Palermo Catania mi",
  "GEODIST Sicily Palermo Catania ft",
  "GEODIST Sicily Palermo Catania Ft",
  "GEODIST Sicily Palermo Catania cm",
  "GEODIST Sicily Palermo Catania km extra",
  "GEODIST Sicily Palermo Palermo",
  "GEODIST Sicily Palermo Nope",
  "GEODIST Sicily Nope Palermo km",
  "GEODIST missing a b",
  "GEODIST missing a b yards",
  "GEODIST str a b",
  "GEODIST Sicily Palermo",
  "GEODIST edges ne sw",
  "GEODIST edges ne sw km",
  "GEODIST edges origin negzero",
  // Scores that are not geohashes still decode (clamped), as Redis's do.
  "ZADD odd -1 neg 0 zero 1.5 frac 4503599627370496 big 9007199254740992 huge 1e30 vast -1e30 tiny inf pinf -inf ninf",
  "GEOPOS odd neg zero frac big huge vast tiny pinf ninf",
  "GEOHASH odd neg zero frac big huge vast tiny pinf ninf",
  "GEODIST odd neg zero",
  "GEODIST odd pinf ninf km",
  "GEORADIUS odd 0 0 20000 km WITHHASH",
  // Searches: GEORADIUS.
  "GEOADD Sicily 13.583333 37.316667 Agrigento 14.2667 37.5833 Enna 12.5 37.8 Marsala",
  "GEORADIUS Sicily 15 37 200 km",
  "GEORADIUS Sicily 15 37 200 km ASC",
  "GEORADIUS Sicily 15 37 200 km DESC",
  "GEORADIUS Sicily 15 37 200 km WITHDIST",
  "GEORADIUS Sicily 15 37 200 km WITHCOORD",
  "GEORADIUS Sicily 15 37 200 km WITHHASH",
  "GEORADIUS Sicily 15 37 200 km WITHDIST WITHCOORD WITHHASH ASC",
  "GEORADIUS Sicily 15 37 200 km withhash withcoord withdist desc",
  "GEORADIUS Sicily 15 37 200 km COUNT 1",
  "GEORADIUS Sicily 15 37 200 km COUNT 2 DESC",
  "GEORADIUS Sicily 15 37 200 km COUNT 2 ANY",
  "GEORADIUS Sicily 15 37 200 km COUNT 2 ANY ASC",
  "GEORADIUS Sicily 15 37 200 km COUNT 100",
  "GEORADIUS Sicily 15 37 200 km ANY",
  "GEORADIUS Sicily 15 37 200 km COUNT 0",
  "GEORADIUS Sicily 15 37 200 km COUNT -1",
  "GEORADIUS Sicily 15 37 200 km COUNT x",
  "GEORADIUS Sicily 15 37 200 km COUNT",
  "GEORADIUS Sicily 15 37 200 km COUNT 9223372036854775807",
  "GEORADIUS Sicily 15 37 200 km COUNT 9223372036854775808",
  "GEORADIUS Sicily 15 37 200000 m",
  "GEORADIUS Sicily 15 37 124.27 mi WITHDIST",
  "GEORADIUS Sicily 15 37 656168 ft WITHDIST",
  "GEORADIUS Sicily 15 37 0 km",
  "GEORADIUS Sicily 15 37 1 km",
  "GEORADIUS Sicily 15 37 -1 km",
  "GEORADIUS Sicily 15 37 x km",
  "GEORADIUS Sicily 15 37 10 yards",
  "GEORADIUS Sicily 200 37 10 km",
  "GEORADIUS Sicily x 37 10 km",
  "GEORADIUS Sicily 15 37 200 km BOGUS",
  "GEORADIUS Sicily 15 37 200 km FROMMEMBER Palermo",
  "GEORADIUS Sicily 15 37 200 km STOREDIST",
  "GEORADIUS Sicily 15 37 200 km STORE dst WITHDIST",
  "GEORADIUS Sicily 15 37 200 km STORE dst WITHCOORD",
  "GEORADIUS Sicily 15 37 200 km STORE dst",
  "ZRANGE dst 0 -1 WITHSCORES",
  "GEORADIUS Sicily 15 37 200 km STOREDIST dst",
  "ZRANGE dst 0 -1 WITHSCORES",
  "GEORADIUS Sicily 15 37 200 km STOREDIST dst COUNT 2 DESC",
  "ZRANGE dst 0 -1 WITHSCORES",
  "GEORADIUS Sicily 15 37 200 mi STOREDIST dst STORE dst2",
  "ZRANGE dst2 0 -1 WITHSCORES",
  "GEORADIUS Sicily 15 37 1 m STORE dst2",
  "EXISTS dst2",
  "GEORADIUS missing 15 37 200 km",
  "GEORADIUS missing 15 37 200 km STORE dst",
  "EXISTS dst",
  "GEORADIUS missing 15 37 200 km WITHDIST BOGUS",
  "GEORADIUS missing 15 37 200 km ANY",
  "GEORADIUS str 15 37 200 km",
  "GEORADIUS str 200 37 200 km",
  "GEORADIUS Sicily 15 37 200",
  "GEORADIUS_RO Sicily 15 37 200 km WITHDIST ASC",
  "GEORADIUS_RO Sicily 15 37 200 km STORE dst",
  "GEORADIUS_RO Sicily 15 37 200 km STOREDIST dst",
  "GEORADIUS_RO missing 15 37 200 km STORE dst",
  // GEORADIUSBYMEMBER.
  "GEORADIUSBYMEMBER Sicily Agrigento 100 km",
  "GEORADIUSBYMEMBER Sicily Agrigento 100 km WITHDIST WITHCOORD",
  "GEORADIUSBYMEMBER Sicily Agrigento 100 km COUNT 2 DESC WITHDIST",
  "GEORADIUSBYMEMBER Sicily Agrigento 1000 km STORE dst",
  "ZRANGE dst 0 -1 WITHSCORES",
  "GEORADIUSBYMEMBER Sicily Nope 100 km",
  "GEORADIUSBYMEMBER Sicily Agrigento -1 km",
  "GEORADIUSBYMEMBER Sicily Agrigento 1 parsecs",
  "GEORADIUSBYMEMBER missing Nope 100 km",
  "GEORADIUSBYMEMBER missing Nope x yards",
  "GEORADIUSBYMEMBER missing Nope 100 km STORE dst",
  "GEORADIUSBYMEMBER missing Nope 100 km BOGUS",
  "GEORADIUSBYMEMBER str Nope 100 km",
  "GEORADIUSBYMEMBER_RO Sicily Agrigento 100 km WITHHASH",
  "GEORADIUSBYMEMBER_RO Sicily Agrigento 100 km STORE dst",
  // GEOSEARCH.
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km ASC",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km",
  "GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 200 km WITHDIST",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 400 400 km ASC WITHCOORD WITHDIST",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 400 200 km ASC",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 100 400 km DESC WITHHASH",
  "GEOSEARCH Sicily FROMMEMBER Enna BYBOX 1 1 m WITHDIST",
  "GEOSEARCH Sicily FROMMEMBER Enna BYBOX 0 0 m",
  "GEOSEARCH Sicily FROMMEMBER Enna BYRADIUS 0 m WITHDIST",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 2",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 2 ANY",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km ANY",
  "GEOSEARCH Sicily BYRADIUS 200 km FROMLONLAT 15 37 WITHDIST",
  "GEOSEARCH Sicily BYRADIUS 200 km",
  "GEOSEARCH Sicily FROMLONLAT 15 37 WITHDIST",
  "geosearch Sicily FROMLONLAT 15 37 WITHDIST COUNT 1",
  "GeoSearch Sicily BYBOX 1 1 km ASC",
  "GEOSEARCH Sicily FROMLONLAT 15 37 FROMMEMBER Palermo BYRADIUS 1 km",
  "GEOSEARCH Sicily FROMMEMBER Palermo FROMLONLAT 15 37 BYRADIUS 1 km",
  "GEOSEARCH Sicily FROMMEMBER Palermo FROMMEMBER Catania BYRADIUS 1 km",
  "GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 1 km BYBOX 1 1 km",
  "GEOSEARCH Sicily FROMMEMBER Palermo BYBOX 1 1 km BYRADIUS 1 km",
  "GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 1 km BYRADIUS 500 km",
  "GEOSEARCH Sicily FROMMEMBER Nope BYRADIUS 1 km",
  "GEOSEARCH Sicily FROMLONLAT 200 0 BYRADIUS 1 km",
  "GEOSEARCH Sicily FROMLONLAT 15 BYRADIUS 1 km",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS -1 km",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS x km",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 1 km",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX x y km",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 1 y km",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX -1 -1 km",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 1 -1 km",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX -1 x km",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 1 1 yards",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km STORE dst",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST",
  "GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 0",
  "GEOSEARCH missing FROMMEMBER Nope BYRADIUS 1 km",
  "GEOSEARCH missing FROMMEMBER Nope BYBOX 1 1 km WITHDIST",
  "GEOSEARCH missing FROMLONLAT 15 37 BYRADIUS 1 km",
  "GEOSEARCH missing FROMMEMBER Nope",
  "GEOSEARCH missing BYRADIUS 1 km",
  "GEOSEARCH missing FROMMEMBER Nope BYRADIUS x km",
  "GEOSEARCH missing FROMMEMBER Nope BYRADIUS 1 km ANY",
  "GEOSEARCH str FROMMEMBER Nope BYRADIUS 1 km",
  "GEOSEARCH Sicily FROMLONLAT 15 37",
  // GEOSEARCHSTORE.
  "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km",
  "ZRANGE dst 0 -1 WITHSCORES",
  "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST",
  "ZRANGE dst 0 -1 WITHSCORES",
  "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYBOX 300 300 mi STOREDIST COUNT 3",
  "ZRANGE dst 0 -1 WITHSCORES",
  "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 1 DESC",
  "ZRANGE dst 0 -1 WITHSCORES",
  "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 1 m",
  "EXISTS dst",
  "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST",
  "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km WITHHASH",
  "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km STORE x",
  "GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37",
  "SET dst x",
  "GEOSEARCHSTORE dst missing FROMLONLAT 15 37 BYRADIUS 200 km",
  "EXISTS dst",
  "SET dst x",
  "EXPIRE dst 100",
  "GEOSEARCHSTORE dst Sicily FROMMEMBER Palermo BYRADIUS 10 km",
  "TTL dst",
  "TYPE dst",
  "COPY Sicily s2",
  "GEOSEARCHSTORE s2 s2 FROMMEMBER Palermo BYRADIUS 100 km STOREDIST",
  "ZRANGE s2 0 -1 WITHSCORES",
  "GEOSEARCHSTORE dst str FROMLONLAT 15 37 BYRADIUS 200 km",
  "GEOSEARCHSTORE dst",
];

/** Edges: antipodes, the antimeridian, the poles' limits, huge and infinite radii, denormals. */
const EDGES: readonly string[] = [
  "GEOADD far 0 0 a 180 0 b -180 0 c 90 45 d -90 -45 e 179.99999 85 f -179.99999 -85 g 0 85.05112878 n 0 -85.05112878 s",
  "GEODIST far a b",
  "GEODIST far a c",
  "GEODIST far b c",
  "GEODIST far d e",
  "GEODIST far f g km",
  "GEODIST far n s",
  "GEORADIUS far 0 0 20000 km WITHDIST ASC",
  "GEORADIUS far 0 0 inf km WITHDIST ASC",
  "GEORADIUS far 0 0 1e300 km COUNT 3",
  "GEORADIUS far 0 0 0 m WITHDIST",
  "GEORADIUS far 180 0 1 m WITHDIST",
  "GEORADIUS far 179.9999 0 100 km WITHDIST WITHCOORD",
  "GEORADIUS far -179.9999 0 100 km WITHDIST WITHCOORD",
  "GEORADIUS far 0 85 100 km WITHDIST",
  "GEORADIUS far 0 -85 100 km WITHDIST",
  "GEORADIUS far 10 80.5 1000 km WITHDIST",
  "GEORADIUS far 10 -70 3000 km WITHDIST",
  "GEOSEARCH far FROMLONLAT 0 0 BYBOX 40075 20000 km WITHDIST ASC",
  "GEOSEARCH far FROMLONLAT 0 0 BYBOX inf inf km WITHDIST ASC",
  "GEOSEARCH far FROMLONLAT 180 0 BYBOX 10 10 km WITHDIST",
  "GEOSEARCH far FROMLONLAT 0 84 BYBOX 1000 400 km WITHDIST",
  "GEOSEARCH far FROMLONLAT 0 -84 BYBOX 1000 400 km WITHDIST",
  "GEOSEARCH far FROMMEMBER f BYBOX 100 100 km WITHDIST WITHCOORD",
  "GEOSEARCHSTORE fd far FROMLONLAT 0 0 BYRADIUS 20000 km STOREDIST",
  "ZRANGE fd 0 -1 WITHSCORES",
  "GEOADD tiny 0 0 o 0.000001 0 e1 0 0.000001 n1 -0.000001 -0.000001 sw1",
  "GEORADIUS tiny 0 0 0.2 m WITHDIST ASC",
  "GEORADIUS tiny 0 0 0.1 m WITHDIST ASC",
  "GEOSEARCH tiny FROMLONLAT 0 0 BYBOX 0.2 0.2 m WITHDIST ASC",
  "GEOSEARCH tiny FROMLONLAT 0 0 BYBOX 0.1 0.3 m WITHDIST ASC",
  "GEORADIUS tiny 0 0 4.9e-324 m WITHDIST",
  "GEORADIUS tiny 0 0 1e-320 km",
  // Subnormals: strtod's ERANGE unless exact.
  "RPUSH dn 1 4.9e-324 2.2250738585072014e-308 1e-310",
  "SORT dn",
  "ZADD errno 1 clear",
  "RPUSH dn2 1 0x1p-1074 0x1.8p-1070 0x0.fffffffffffffp-1022 0x1p-1022 2.2250738585072014e-308",
  "RPUSH dn2 -0x1p-1050 4.940656458412465441765687928682213723651e-324",
  "SORT dn2",
  "SORT dn2 DESC",
  "RPUSH dn3 1 2.2250738585072011e-308",
  "SORT dn3",
  "ZADD errno 1 clear",
  "RPUSH hx 0x10 0x1p-2 0X1A 0x",
  "SORT hx",
  "ZADD errno 1 clear",
  "RPUSH arrows 1 2",
  "HSET hh_1 a->b x1 b y1",
  "HSET hh_2 a->b x2 b y2",
  "SET hh_1->a x",
  "SORT arrows GET hh_*->a->b GET hh_*->b GET hh_1->a GET hh_*-> GET *->b",
  "SORT arrows BY hh_*->a->b ALPHA DESC GET #",
];

/** Ties: several members at one point, so equal distances test the sorts' order. */
const TIES: readonly string[] = [
  "GEOADD ties 10 10 a 10 10 b 10 10 c 10.001 10.001 d 10 10 e 9.999 9.999 f 10 10 g 10.002 10 h",
  "GEORADIUS ties 10 10 10 km",
  "GEORADIUS ties 10 10 10 km ASC",
  "GEORADIUS ties 10 10 10 km DESC",
  "GEORADIUS ties 10 10 10 km COUNT 3",
  "GEORADIUS ties 10 10 10 km COUNT 3 DESC",
  "GEORADIUS ties 10 10 10 km COUNT 6",
  "GEORADIUS ties 10 10 10 km COUNT 7 DESC WITHDIST",
  "GEORADIUS ties 10 10 10 km COUNT 2 ANY",
  "GEORADIUS ties 10 10 10 km COUNT 2 ANY DESC",
  "GEORADIUSBYMEMBER ties a 1 km WITHDIST",
  "GEOSEARCH ties FROMMEMBER d BYRADIUS 100 km COUNT 4 ASC WITHDIST",
  "GEOSEARCH ties FROMMEMBER d BYBOX 100 100 km COUNT 4 DESC WITHDIST",
];

/** Random points around the world, and searches of many radii and boxes around others. */
function randomGeo(): string[] {
  const random = lcg(20240607);
  const lines: string[] = [];
  const coordinate = (span: number, limit: number) =>
    Math.max(-limit, Math.min(limit, (random() * 2 - 1) * span)).toFixed(6);
  // Clusters near a few centres (poles, antimeridian, equator), and points anywhere.
  const centres: [number, number][] = [
    [0, 0],
    [179.5, 10],
    [-179.5, -10],
    [20, 84],
    [-60, -84],
    [13.4, 52.5],
    [-122.4, 37.8],
  ];
  for (let batch = 0; batch < 6; batch++) {
    const args = ["GEOADD", "world"];
    for (let i = 0; i < 40; i++) {
      let lon: string;
      let lat: string;
      if (i % 2 === 0) {
        lon = coordinate(180, 180);
        lat = coordinate(85, 85.05);
      } else {
        const [cx, cy] = centres[(i + batch) % centres.length]!;
        lon = Math.max(-180, Math.min(180, cx + (random() * 2 - 1) * 3)).toFixed(5);
        lat = Math.max(-85.05, Math.min(85.05, cy + (random() * 2 - 1) * 2)).toFixed(5);
      }
      args.push(lon, lat, `p${batch}_${i}`);
    }
    lines.push(args.join(" "));
  }
  const units = ["m", "km", "mi", "ft"];
  for (let i = 0; i < 80; i++) {
    const [cx, cy] = centres[i % centres.length]!;
    const lon = (cx + (random() * 2 - 1) * 2).toFixed(4);
    const lat = Math.max(-85, Math.min(85, cy + (random() * 2 - 1) * 2)).toFixed(4);
    const unit = units[i % units.length]!;
    const meters = [50_000, 200_000, 500_000, 2_000_000, 7_000_000][i % 5]!;
    const scale = { m: 1, km: 1000, mi: 1609.34, ft: 0.3048 }[unit]!;
    const radius = (meters / scale).toFixed(1);
    const option = ["", " COUNT 5", " DESC", " COUNT 3 DESC", " ASC"][i % 5]!;
    lines.push(`GEORADIUS world ${lon} ${lat} ${radius} ${unit} WITHDIST WITHHASH${option}`);
    const height = ((meters * 1.5) / scale).toFixed(1);
    lines.push(
      `GEOSEARCH world FROMLONLAT ${lon} ${lat} BYBOX ${radius} ${height} ${unit} WITHCOORD${option}`,
    );
    if (i % 4 === 0) {
      lines.push(
        `GEOSEARCHSTORE dist world FROMLONLAT ${lon} ${lat} BYRADIUS ${radius} ${unit} STOREDIST`,
      );
      lines.push("ZRANGE dist 0 -1 WITHSCORES");
    }
  }
  for (let i = 0; i < 20; i++) {
    const member = `p${i % 6}_${(i * 7) % 40}`;
    lines.push(`GEORADIUSBYMEMBER world ${member} ${[100, 1000, 5000][i % 3]} km WITHDIST`);
    lines.push(`GEOPOS world ${member} p${(i + 1) % 6}_${i}`);
    lines.push(`GEOHASH world ${member} p${(i + 1) % 6}_${i}`);
    lines.push(`GEODIST world ${member} p${(i + 1) % 6}_${i} mi`);
  }
  lines.push("GEORADIUS world 0 0 20000 km COUNT 10 WITHDIST");
  lines.push("GEORADIUS world 0 0 20000 km COUNT 10 ANY");
  lines.push("GEOSEARCH world FROMLONLAT 0 0 BYBOX 40000 20000 km COUNT 10 DESC");
  return lines;
}

/** Random lists sorted every way, with weights and GETs. */
function randomSort(): string[] {
  const random = lcg(7);
  const lines: string[] = [];
  const values = Array.from({ length: 60 }, () => String(Math.floor(random() * 50) - 10));
  lines.push(`RPUSH rl ${values.join(" ")}`);
  for (let i = -10; i < 40; i++) lines.push(`SET rw_${i} ${Math.floor(random() * 5)}`);
  for (let i = -10; i < 40; i += 3) lines.push(`SET rn_${i} name${Math.floor(random() * 4)}`);
  for (const limit of ["", " LIMIT 0 10", " LIMIT 5 20", " LIMIT 50 20", " LIMIT 3 1"]) {
    lines.push(`SORT rl${limit}`);
    lines.push(`SORT rl DESC${limit}`);
    lines.push(`SORT rl ALPHA${limit}`);
    lines.push(`SORT rl BY rw_*${limit} GET # GET rn_*`);
    lines.push(`SORT rl BY rw_* DESC${limit}`);
    lines.push(`SORT rl BY rn_* ALPHA${limit} GET rn_*`);
    lines.push(`SORT rl BY rn_* ALPHA DESC${limit}`);
  }
  return lines;
}

export const COMMANDS: readonly (readonly string[])[] = [
  ...SORT,
  ...GEO,
  ...EDGES,
  ...TIES,
  ...randomGeo(),
  ...randomSort(),
].map((line) => quoted(line));

/** Splits on spaces, keeping '…' quoted words whole (a leading or trailing space). */
function quoted(line: string): string[] {
  if (!line.includes("'")) return words(line);
  const out: string[] = [];
  for (const match of line.matchAll(/'([^']*)'|(\S+)/g)) out.push(match[1] ?? match[2]!);
  return out;
}
