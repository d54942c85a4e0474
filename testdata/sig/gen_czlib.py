#!/usr/bin/env python3
"""Writes czlib_fixtures.json: UserSigs in the forms the non-Go official ports
produce (C zlib at levels 0/1/6/9, Python/PHP/Java-style JSON: spacing, key
order, escaped or raw non-ASCII, escaped slashes) plus malformed ones.

The MAC is computed here independently of pkg/sig. Run from the repo root:
    python3 testdata/sig/gen_czlib.py
Output is deterministic (fixed clock), so re-running changes nothing.
"""
import base64, hashlib, hmac, json, os, zlib

APPID = 1400000000
KEY = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
T = 1700000000
NOW = T + 100


def mac(user, appid, t, expire, userbuf=None):
    msg = "TLS.identifier:%s\nTLS.sdkappid:%d\nTLS.time:%d\nTLS.expire:%d\n" % (user, appid, t, expire)
    if userbuf is not None:
        msg += "TLS.userbuf:%s\n" % base64.b64encode(userbuf).decode()
    d = hmac.new(KEY.encode(), msg.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(d).decode()


def outer(z):
    return base64.b64encode(z).decode().replace("+", "*").replace("/", "-").replace("=", "_")


def doc(user="pyuser", expire=86400, userbuf=None, order=None):
    d = {"TLS.ver": "2.0", "TLS.identifier": user, "TLS.sdkappid": APPID,
         "TLS.expire": expire, "TLS.time": T}
    if userbuf is not None:
        d["TLS.userbuf"] = base64.b64encode(userbuf).decode()
    d["TLS.sig"] = mac(user, APPID, T, expire, userbuf)
    if order == "reversed":
        d = dict(reversed(list(d.items())))
    return d


fixtures = []


def add(name, user, text, level=6, code=0, z=None, note=""):
    if z is None:
        z = zlib.compress(text.encode("utf-8") if isinstance(text, str) else text, level)
    fixtures.append({"name": name, "appid": APPID, "user": user, "now": NOW,
                     "sig": outer(z), "code": code, "note": note})


# Python port: json.dumps defaults (", " and ": "), zlib default level 6.
for lvl in (0, 1, 6, 9):
    add("py-level%d" % lvl, "pyuser", json.dumps(doc()), lvl, note="C zlib level %d, Python spacing" % lvl)
add("py-reversed-keys", "pyuser", json.dumps(doc(order="reversed")), note="keys in reverse order")
add("py-indent", "pyuser", json.dumps(doc(), indent=2) + "\n", note="pretty-printed, newlines")
add("py-no-newline-compact", "pyuser", json.dumps(doc(), separators=(",", ":")), 1, note="compact, no trailing newline")
add("nonascii-escaped", "用户x", json.dumps(doc(user="用户x")), note="\\uXXXX escapes (ensure_ascii)")
add("nonascii-raw", "用户x", json.dumps(doc(user="用户x"), ensure_ascii=False), note="raw UTF-8")
add("php-escaped-slashes", "pyuser", json.dumps(doc(), separators=(",", ":")).replace("/", "\\/"), note="PHP json_encode escapes /")
add("userbuf", "pyuser", json.dumps(doc(userbuf=b"\x00\x01abc/+")), note="userbuf")
add("tabs-crlf", "pyuser", json.dumps(doc()).replace(", ", ",\r\n\t").replace(": ", " :\t"), note="tabs and CRLF")
d = doc()
dup = '{"TLS.identifier": "someone", ' + json.dumps(d)[1:]
add("duplicate-key-last-wins", "pyuser", dup, note="duplicate key: last wins as in encoding/json")

# Rejected forms.
good = zlib.compress(json.dumps(doc()).encode(), 6)
add("junk-after-stream", "pyuser", None, z=good + b"\x00", code=70003)
add("bad-adler", "pyuser", None, z=good[:-1] + bytes([good[-1] ^ 1]), code=70003)
add("truncated", "pyuser", None, z=good[:-6], code=70003)
add("no-adler", "pyuser", None, z=good[:-4], code=70003)
add("bomb", "pyuser", json.dumps(doc())[:-1] + ', "pad": "' + " " * 100000 + '"}', 9, code=70003, note="inflates past the cap")
add("raw-deflate", "pyuser", None, z=zlib.compress(json.dumps(doc()).encode())[2:-4], code=70003, note="no zlib header")
add("gzip", "pyuser", None, z=__import__("gzip").compress(json.dumps(doc()).encode(), mtime=0), code=70003)
add("float-time", "pyuser", json.dumps(doc()).replace(str(T), str(T) + ".0"), code=70003)
add("string-appid", "pyuser", json.dumps(doc()).replace(str(APPID), '"%d"' % APPID), code=70003)
add("negative-appid", "pyuser", json.dumps(doc()).replace(str(APPID), "-0"), code=70003)
add("not-json", "pyuser", "TLS.ver=2.0", code=70003)
add("trailing-comma", "pyuser", json.dumps(doc())[:-1] + ",}", code=70003)
add("two-objects", "pyuser", json.dumps(doc()) + "{}", code=70003)
d = doc(); del d["TLS.sig"]
add("no-sig", "pyuser", json.dumps(d), code=70003)
d = doc(); d["TLS.userbuf"] = ""
add("empty-userbuf", "pyuser", json.dumps(d), code=70009, note="present but empty userbuf")
d = doc(); d["TLS.sig"] = mac("pyuser", APPID, T, 86401)
add("bad-mac", "pyuser", json.dumps(d), code=70009)
add("wrong-user", "other", json.dumps(doc()), code=70013)
d = doc(); d["TLS.sdkappid"] = APPID + 1
add("wrong-app", "pyuser", json.dumps(d), code=70014)
d = doc(expire=-1)
add("negative-expire", "pyuser", json.dumps(d), code=70001)
d = doc(expire=9223372036854775807)
add("overflow-expire", "pyuser", json.dumps(d), code=70001, note="time+expire overflows: expired, as the official code wraps")

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "czlib_fixtures.json")
with open(out, "w") as f:
    json.dump(fixtures, f, indent=1, ensure_ascii=False)
    f.write("\n")
print("wrote", out, len(fixtures), "fixtures")
