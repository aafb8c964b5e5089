#!/usr/bin/python3
"""Decodes an OTLP ExportTraceServiceRequest (protobuf) with python3-protobuf and the
services/proto/otlp_trace.proto subset, for unit.otlp. Prints one JSON object: the message
(field names as in the .proto, ids in lowercase hex) and whether re-encoding it gives the
very same bytes (protobuf's canonical encoding: fields in number order, defaults left out).

usage: otlp_decode.py PROTO_DIR FILE"""
import base64
import json
import os
import subprocess
import sys
import tempfile

proto_dir, path = sys.argv[1], sys.argv[2]
with tempfile.TemporaryDirectory() as out:
    subprocess.run(["protoc", "--python_out=" + out, "-I" + proto_dir,
                    os.path.join(proto_dir, "otlp_trace.proto")], check=True)
    sys.path.insert(0, out)
    import otlp_trace_pb2
    from google.protobuf import json_format

    data = open(path, "rb").read()
    req = otlp_trace_pb2.ExportTraceServiceRequest()
    req.ParseFromString(data)
    d = json_format.MessageToDict(req, preserving_proto_field_name=True,
                                  use_integers_for_enums=True)
    for rs in d.get("resource_spans", []):
        for ss in rs.get("scope_spans", []):
            for sp in ss.get("spans", []):
                for k in ("trace_id", "span_id", "parent_span_id"):
                    if k in sp:
                        sp[k] = base64.b64decode(sp[k]).hex()
    d["reencode_equal"] = req.SerializeToString() == data
    print(json.dumps(d))
