# Validates `rtctr features` output (stdin) against the runtime-spec's
# features schema (directory given as argv[1]); prints the errors.
import json, sys, pathlib
from jsonschema import Draft4Validator, RefResolver
d = pathlib.Path(sys.argv[1]).resolve()
schema = json.loads((d / "features-schema.json").read_text())
store = {}
for f in d.glob("*.json"):
    s = json.loads(f.read_text()); store[f.name] = s; store[f.as_uri()] = s
    if "id" in s: store[s["id"]] = s
resolver = RefResolver(base_uri=d.as_uri() + "/", referrer=schema, store=store)
doc = json.load(sys.stdin)
errors = list(Draft4Validator(schema, resolver=resolver).iter_errors(doc))
for e in errors: print("/".join(map(str, e.path)), e.message)
print("valid" if not errors else f"{len(errors)} errors")
