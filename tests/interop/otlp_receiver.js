// A tiny OTLP/HTTP trace receiver on the npm OpenTelemetry packages, for test_otlp_spans.sh:
// what our exporter sends must decode with the protobuf code the OpenTelemetry JS exporters
// are built from (@opentelemetry/otlp-transformer 0.52.1's build/src/generated/root.js;
// later versions no longer ship a decoder).
//
//   node otlp_receiver.js SPANS_FILE
//
// Listens on 127.0.0.1 (a port picked by the kernel) and prints "listening on PORT" once it
// does. POST /v1/traces with Content-Type application/x-protobuf (gzip allowed) is decoded as
// an ExportTraceServiceRequest and answered 200 with an empty ExportTraceServiceResponse;
// each span becomes one JSON line in SPANS_FILE: traceId, spanId, parentSpanId (hex, "" for
// none), name, kind (the enum's number), service (the resource's service.name) and
// attributes (key -> value; integers as numbers). Anything else is answered 4xx and logged on
// stderr as "rejected: WHY", which the test looks for. SIGTERM closes it and exits 0.
'use strict';

const fs = require('fs');
const http = require('http');
const zlib = require('zlib');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');

const v1 = root.opentelemetry.proto.collector.trace.v1;
const MAX_BODY = 16 << 20;

if (process.argv.length !== 3) {
    process.stderr.write('usage: node otlp_receiver.js SPANS_FILE\n');
    process.exit(2);
}
const spansFile = process.argv[2];
fs.writeFileSync(spansFile, '');

function hex(b) {
    return b && b.length ? Buffer.from(b).toString('hex') : '';
}

function anyValue(v) {
    if (!v) return null;
    if (v.value === 'stringValue') return v.stringValue;
    if (v.value === 'intValue') return Number(v.intValue.toString());
    if (v.value === 'boolValue') return v.boolValue;
    if (v.value === 'doubleValue') return v.doubleValue;
    if (v.value === 'bytesValue') return hex(v.bytesValue);
    if (v.value === 'arrayValue') return (v.arrayValue.values || []).map(anyValue);
    if (v.value === 'kvlistValue') return attrs(v.kvlistValue.values);
    return null;
}

function attrs(kvs) {
    const o = {};
    for (const kv of kvs || []) o[kv.key] = anyValue(kv.value);
    return o;
}

function reject(res, code, why) {
    process.stderr.write(`rejected: ${why}\n`);
    res.writeHead(code, { 'Content-Type': 'text/plain' });
    res.end(why + '\n');
}

function exportRequest(body) {
    const req = v1.ExportTraceServiceRequest.decode(body);
    const lines = [];
    for (const rs of req.resourceSpans || []) {
        const resource = attrs(rs.resource && rs.resource.attributes);
        for (const ss of rs.scopeSpans || []) {
            for (const s of ss.spans || []) {
                lines.push(JSON.stringify({
                    traceId: hex(s.traceId),
                    spanId: hex(s.spanId),
                    parentSpanId: hex(s.parentSpanId),
                    name: s.name,
                    kind: s.kind,
                    service: resource['service.name'],
                    attributes: attrs(s.attributes),
                }));
            }
        }
    }
    if (lines.length) fs.appendFileSync(spansFile, lines.join('\n') + '\n');
    return lines.length;
}

const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/traces')
        return reject(res, 404, `${req.method} ${req.url}`);
    const type = (req.headers['content-type'] || '').split(';')[0].trim();
    if (type !== 'application/x-protobuf')
        return reject(res, 415, `content-type ${type}`);
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
        if (size > MAX_BODY) return reject(res, 413, `a body of ${size} bytes`);
        let body = Buffer.concat(chunks);
        const enc = req.headers['content-encoding'] || 'identity';
        try {
            if (enc === 'gzip') body = zlib.gunzipSync(body);
            else if (enc !== 'identity') return reject(res, 415, `content-encoding ${enc}`);
            const n = exportRequest(body);
            process.stderr.write(`accepted ${n} spans (${body.length} bytes)\n`);
        } catch (e) {
            return reject(res, 400, `cannot decode: ${e.message}`);
        }
        const out = v1.ExportTraceServiceResponse.encode(
            v1.ExportTraceServiceResponse.create({})).finish();
        res.writeHead(200, {
            'Content-Type': 'application/x-protobuf',
            'Content-Length': out.length,
        });
        res.end(Buffer.from(out));
    });
});

server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening on ${server.address().port}\n`);
});
process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
});
