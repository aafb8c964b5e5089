---@meta faultline
-- LuaLS (lua-language-server) annotations for faultline scenario files: point your editor
-- at this file and `topology`, `scenario`, `t:` and its objects autocomplete and type-check.
-- It describes; it is never run. See docs/lua-api.md for the full text of each call, and
-- docs/writing-scenarios.md ("Editor support") for the .luarc.json that loads it.
--
-- Keep this file in step with harness/prelude.lua and the C primitives in harness/*.c:
-- every public method of t, instances, links, faults, t.consul and t.broker is here.

---A duration: seconds as a number (`0.25`), or number-unit pairs as a string
---(`"250ms"`, `"5s"`, `"1m30s"`; units ns, us, ms, s, m, h).
---@alias faultline.Duration number|string

---An instance handle, or an instance name such as `"users-2"`.
---@alias faultline.InstanceRef faultline.Instance|string

---What `t:link` and `t:partition` accept on each side: an instance, a service name
---(`"users"`: all its instances), an instance name (`"users-2"`), `"broker"`, or a list.
---@alias faultline.Selector faultline.Instance|string|(faultline.Instance|string)[]

---@alias faultline.Ready "port"|"healthy"|"none"
---@alias faultline.State "down"|"starting"|"up"|"paused"|"stopping"
---@alias faultline.Direction "upstream"|"downstream"|"both"
---@alias faultline.ToxicKind "latency"|"bandwidth"|"slicer"|"limit_data"|"timeout"|"reset_peer"|"slow_close"|"refuse"

---@class faultline.Service
---@field cmd string|string[] the command; a bare name is looked up in faultline's bin folder, then PATH
---@field replicas? integer 0-254 (default 1); instances are `<service>-1` ... `<service>-N`
---@field env? table<string, string|number|boolean> extra environment; wins over the wiring contract
---@field needs? string[] services this one calls: `<NEED>_ADDR` for each, started after them
---@field ready? faultline.Ready default "port"
---@field ready_timeout? faultline.Duration default "10s"
---@field grace? faultline.Duration SIGTERM -> SIGKILL grace (default the topology's)
---@field start? boolean false: not started at setup (use t:start)

---@class faultline.Topology
---@field services? table<string, faultline.Service>
---@field grace? faultline.Duration default "3s"
---@field consul? "fake"|"none"|string "fake" (default), "none", or a real agent's "host:port"
---@field amqp? "fake"|"none"|string "fake" (default), "none", or a real broker's "amqp://..." URL
---@field mutants? string[] the FAULTLINE_BUG values its services implement (`faultline run --mutants`)

---Declares the file's services (at most once per file).
---@param spec faultline.Topology
function topology(spec) end

---@class faultline.ScenarioOpts
---@field timeout? faultline.Duration wall limit, setup and teardown included (default --timeout, 120s)
---@field skip? boolean|string skip it (a string says why)
---@field catches? string[] the topology's mutants this scenario exists to catch (`--mutants` checks the claim)

---Declares a scenario. `fn(t)` runs in a coroutine with a fresh topology.
---@param name string unique in the file
---@param opts_or_fn faultline.ScenarioOpts|fun(t: faultline.T)
---@param fn? fun(t: faultline.T)
function scenario(name, opts_or_fn, fn) end

---@class faultline.Instance
---@field name string "users-2"
---@field service string "users"
---@field index integer 2
---@field host string "127.5.3.2"
---@field port integer
---@field addr string "host:port"
---@field pid integer? the shim's pid, nil when down
---@field state faultline.State
---@field exit_code integer? last exit code (nil if running, never ran, or killed by a signal)
---@field signal integer? the signal that killed it last
---@field starts integer how many times it was started in this scenario

---@class faultline.ToxicOpts
---@field direction? faultline.Direction default "downstream" ("both" for latency-like defaults: see lua-api.md)
---@field toxicity? number 0-1: probability per connection (seeded)
---@field first? integer only the first N connections (one budget over all selected links)
---@field name? string name on each link (default `<kind>_<direction>`)

---@class faultline.LatencyOpts: faultline.ToxicOpts
---@field ms number 0-3600000
---@field jitter? number

---@class faultline.BandwidthOpts: faultline.ToxicOpts
---@field kbps number >= 1

---@class faultline.SlicerOpts: faultline.ToxicOpts
---@field avg number bytes per slice, >= 1
---@field variation? number
---@field delay_us? number

---@class faultline.LimitDataOpts: faultline.ToxicOpts
---@field bytes number

---@class faultline.TimeoutOpts: faultline.ToxicOpts
---@field ms? number 0 (default): hold until removed (a blackhole)

---@class faultline.ResetPeerOpts: faultline.ToxicOpts
---@field ms? number

---@class faultline.SlowCloseOpts: faultline.ToxicOpts
---@field ms number

---@class faultline.FaultStats
---@field connections integer connections it applied to
---@field chunks integer
---@field bytes integer
---@field dropped integer
---@field resets integer
---@field closes integer
---@field refused integer
---@field fired boolean it did something at all
---@field active boolean it is still on

---A fault on links (a toxic, a partition, an isolation).
---@class faultline.Fault
local Fault = {}
---Takes it off every link it is on; what it held flows on, in order. Recorded on the timeline with what it did.
---@return faultline.Fault
function Fault:remove() end
---Same as :remove().
---@return faultline.Fault
function Fault:heal() end
---@return faultline.FaultStats
function Fault:stats() end

---@class faultline.LinkFigures
---@field name string "gateway-1->users-2"
---@field listen string the link's "host:port"
---@field accepted integer
---@field active integer
---@field upstream_failed integer
---@field refused integer
---@field resets integer
---@field bytes_up integer
---@field bytes_down integer
---@field toxics table<string, table>

---@class faultline.LinkStats
---@field accepted integer
---@field active integer
---@field upstream_failed integer
---@field refused integer
---@field resets integer
---@field bytes_up integer
---@field bytes_down integer
---@field links table<string, faultline.LinkFigures>

---A selection of links (from `t:link(a, b)` or `t:links()`).
---@class faultline.Links
local Links = {}
---@param opts faultline.LatencyOpts
---@return faultline.Fault
function Links:latency(opts) end
---@param opts faultline.BandwidthOpts
---@return faultline.Fault
function Links:bandwidth(opts) end
---@param opts faultline.SlicerOpts
---@return faultline.Fault
function Links:slicer(opts) end
---@param opts faultline.LimitDataOpts
---@return faultline.Fault
function Links:limit_data(opts) end
---@param opts? faultline.TimeoutOpts
---@return faultline.Fault
function Links:timeout(opts) end
---@param opts? faultline.ResetPeerOpts
---@return faultline.Fault
function Links:reset_peer(opts) end
---@param opts faultline.SlowCloseOpts
---@return faultline.Fault
function Links:slow_close(opts) end
---@param opts? faultline.ToxicOpts
---@return faultline.Fault
function Links:refuse(opts) end
---Adds a toxic by name.
---@param kind faultline.ToxicKind
---@param opts? table
---@return faultline.Fault
function Links:toxic(kind, opts) end
---Removes every toxic from these links (and closes their faults' intervals on the timeline).
---@return faultline.Links
function Links:heal() end
---Closes (or with reset = true, RSTs) every open connection of these links.
---@param opts? { reset?: boolean }
---@return faultline.Links
function Links:drop(opts) end
---@return faultline.LinkStats
function Links:stats() end
---@return string[]
function Links:names() end

---@class faultline.ConsulEntry
---@field id string
---@field service string
---@field node string
---@field address string
---@field port integer
---@field tags string[]

---The fake Consul's faults (`t.consul`).
---@class faultline.Consul
local Consul = {}
---Every agent refuses connections until :up().
---@return faultline.Consul
function Consul:down() end
---@return faultline.Consul
function Consul:up() end
---Every answer leaves d late (0 or nil: none).
---@param d? faultline.Duration
---@return faultline.Consul
function Consul:latency(d) end
---Blocking queries never return and writes hang, until :thaw().
---@return faultline.Consul
function Consul:freeze() end
---@return faultline.Consul
function Consul:thaw() end
---Reads describe the catalog as it was d ago (0 or nil: current).
---@param d? faultline.Duration
---@return faultline.Consul
function Consul:stale(d) end
---The service's checks alternate passing/critical every period.
---@param service string
---@param period faultline.Duration
---@return faultline.Consul
function Consul:flap(service, period) end
---Stops a flap.
---@param service string
---@return faultline.Consul
function Consul:steady(service) end
---Undoes down, latency, freeze and stale.
---@return faultline.Consul
function Consul:heal() end
---The catalog's index (X-Consul-Index).
---@return integer
function Consul:index() end

---@class faultline.QueueStats
---@field ready integer
---@field unacked integer
---@field consumers integer
---@field published integer
---@field delivered integer
---@field acked integer
---@field redelivered integer
---@field dropped integer
---@field duplicated integer
---@field dead_lettered integer
---@field expired integer

---The fake broker's faults and figures (`t.broker`).
---@class faultline.Broker
local Broker = {}
---The listener closes and every connection drops, until :up().
---@return faultline.Broker
function Broker:down() end
---@return faultline.Broker
function Broker:up() end
---CONNECTION_FORCED to every connection; transient state is lost, durable queues keep persistent messages.
---@return faultline.Broker
function Broker:restart() end
---Closes every client connection without a word; returns how many.
---@return integer
function Broker:drop_connections() end
---connection.blocked: publishers are not read until :unblock().
---@return faultline.Broker
function Broker:block() end
---@return faultline.Broker
function Broker:unblock() end
---Messages become deliverable d after they are enqueued (0 or nil: none).
---@param d? faultline.Duration
---@return faultline.Broker
function Broker:delay(d) end
---That share of deliveries is sent twice (the copy redelivered); 0 turns it off.
---@param rate number|{ rate: number }
---@return faultline.Broker
function Broker:duplicate(rate) end
---That share of deliveries is lost; 0 turns it off.
---@param rate number|{ rate: number }
---@return faultline.Broker
function Broker:drop(rate) end
---Undoes down, block, delay, duplicate and drop.
---@return faultline.Broker
function Broker:heal() end
---The queue's figures now, or nil when there is no such queue.
---@param queue string
---@param vhost? string default "/"
---@return faultline.QueueStats?
function Broker:stats(queue, vhost) end
---How many client connections are open.
---@return integer
function Broker:connections() end
---"host:port" the broker listens on (instances reach it through their links).
---@return string
function Broker:address() end

---One span as the collector received it (t:traces).
---@class faultline.Span
---@field trace_id string 32 lowercase hex digits
---@field span_id string 16 lowercase hex digits
---@field parent_id string|nil nil for a root
---@field name string
---@field kind "server"|"client"|"producer"|"consumer"|"internal"
---@field service string service.name
---@field instance string service.instance.id, or ""
---@field start number seconds since the scenario started (0 if before)
---@field duration number seconds
---@field status "unset"|"ok"|"error"
---@field status_message string
---@field attributes table<string, string>
---@field children faultline.Span[] in start order

---A trace from t:traces, as a tree.
---@class faultline.Trace
---@field trace_id string
---@field root faultline.Span
---@field roots faultline.Span[] every span whose parent is not in the trace
---@field spans faultline.Span[] every span, in start order

---A request of t:load: HTTP (method, path, body, headers) or gRPC (grpc, message, metadata).
---@class faultline.Request
---@field method? string HTTP method, default "GET"
---@field path? string default "/"
---@field body? string
---@field headers? table<string, string|number>
---@field grpc? string a gRPC method "/pkg.Service/Method": makes it a gRPC request
---@field message? string the serialized request message (t.pb.encode)
---@field metadata? table<string, string|number>
---@field ok? integer[] statuses (HTTP) or codes (gRPC) that count as success; default 2xx / 0

---@class faultline.LoadOpts
---@field to faultline.Selector a service, an instance, or a list of them
---@field rate number requests per second (constant arrival schedule)
---@field duration? faultline.Duration without it: until load:stop()
---@field request faultline.Request|fun(i: integer): faultline.Request
---@field concurrency? integer most requests in flight, default 64
---@field timeout? faultline.Duration per request, default "5s"
---@field name? string label on the timeline and charts
---@field keep? boolean keep every answer for load:results()

---What a load did (latencies in seconds, from each request's intended send time).
---@class faultline.LoadStats
---@field sent integer
---@field ok integer
---@field failed integer
---@field errors table<string, integer> failed requests by kind: timeout, refused, reset, closed, malformed, io, http_NNN, grpc_N
---@field error_rate number failed / (ok + failed)
---@field p50 number
---@field p90 number
---@field p99 number
---@field p999 number
---@field max number
---@field min number
---@field mean number
---@field rate number requests sent per second
---@field elapsed number seconds the load ran
---@field inflight integer
---@field queued integer
---@field cancelled integer
---@field unsent integer
---@field running boolean
---@field name string

---One kept answer (load:results()).
---@class faultline.LoadResult
---@field i integer the request's number in the schedule
---@field status? integer HTTP status (nil without an answer)
---@field code? integer gRPC status
---@field body string
---@field error? string the kind, nil on success
---@field message? string
---@field latency number seconds

---A running or finished t:load.
---@class faultline.Load
local Load = {}
---Waits until the schedule has run out and every request has ended.
---@return faultline.LoadStats
function Load:wait() end
---Stops now (queued requests are dropped, those in flight abandoned).
---@return faultline.LoadStats
function Load:stop() end
---The figures so far.
---@return faultline.LoadStats
function Load:stats() end
---Every ended request, in schedule order (needs keep = true).
---@return faultline.LoadResult[]
function Load:results() end

---@class faultline.HttpResult
---@field status? integer nil when no answer came
---@field body? string
---@field headers? table<string, string> lower-case names
---@field error? string "refused", "timeout", "reset", "closed", "malformed", "io"
---@field message? string
---@field latency number seconds

---@class faultline.GrpcResult
---@field code integer gRPC status (14 or 4 when no answer came)
---@field message string grpc-message
---@field body string the answer's bytes (t.pb.decode)
---@field error? string nil when code is 0
---@field latency number seconds

---protobuf's wire format by field number, without a schema.
---@class faultline.Pb
local Pb = {}
---Bytes: strings length-delimited, integers/booleans varints, numbers doubles, tables nested messages.
---@param fields table<integer, any>
---@return string
function Pb.encode(fields) end
---{ [field] = value }: varints and fixed as integers, length-delimited as strings; repeats become lists.
---@param bytes string
---@return table<integer, any>
function Pb.decode(bytes) end
---Marks a list as one repeated field for encode.
---@param list any[]
---@return any[]
function Pb.repeated(list) end

---What t:nemesis can do.
---@alias faultline.NemesisFault "crash"|"pause"|"partition"|"latency"|"reset_peer"|"consul_down"|"broker_restart"

---@class faultline.NemesisOpts
---@field faults faultline.NemesisFault[] the menu; a name given twice is drawn twice as often
---@field targets? faultline.Selector instances it may act on (default: every instance)
---@field interval? faultline.Duration mean quiet time before each fault (default "1s")
---@field hold? faultline.Duration mean time each fault is held (default: interval)
---@field duration? faultline.Duration every fault is planned to be healed by then (default "10s")
---@field seed? integer fixes the schedule (default: drawn from the scenario's generator, so --seed fixes it)
---@field latency? faultline.Duration the latency fault's delay (default "200ms", jitter a quarter of it)

---One step of a nemesis's schedule.
---@class faultline.NemesisStep
---@field n integer its place in the schedule, from 1
---@field fault faultline.NemesisFault
---@field target string the instance, or "consul" / "broker"
---@field at number planned start, seconds after the nemesis started
---@field hold number planned time held, seconds
---@field status? "on"|"healed"|"skipped"|"stopped"|"failed" history only
---@field started? number t:now() when it was applied (history only)
---@field healed? number t:now() when it was healed (history only)
---@field reason? string why it was skipped ("echo-1 is down")
---@field error? string what went wrong ("failed")

---A seeded random fault schedule running in the background (t:nemesis).
---@class faultline.Nemesis
local Nemesis = {}
---Waits until every step has run and every fault is healed (and every instance it restarted is ready); returns the history.
---@return faultline.NemesisStep[]
function Nemesis:wait() end
---No new fault; the one that is on is healed now; returns the history.
---@return faultline.NemesisStep[]
function Nemesis:stop() end
---What it did so far, in order.
---@return faultline.NemesisStep[]
function Nemesis:history() end
---The whole schedule, as drawn when it started.
---@return faultline.NemesisStep[]
function Nemesis:plan() end
---True until every step has run or it was stopped.
---@return boolean
function Nemesis:running() end

---The scenario object passed to every scenario function.
---@class faultline.T
---@field name string the scenario's name
---@field file string the scenario file as given
---@field seed integer the run's seed
---@field consul faultline.Consul the fake Consul's faults
---@field broker faultline.Broker the fake broker's faults and figures
---@field pb faultline.Pb protobuf wire format for gRPC messages
local T = {}

---Waits d.
---@param d faultline.Duration
function T:sleep(d) end
---Starts an open-loop load generator; returns its handle at once.
---@param opts faultline.LoadOpts
---@return faultline.Load
function T:load(opts) end
---One HTTP request, waited for; never raises for a failed request.
---@param opts { to: faultline.Selector, method?: string, path?: string, body?: string, headers?: table<string, string|number>, timeout?: faultline.Duration, ok?: integer[] }
---@return faultline.HttpResult
function T:http(opts) end
---One gRPC unary call, waited for.
---@param opts { to: faultline.Selector, method: string, message?: string, metadata?: table<string, string|number>, timeout?: faultline.Duration }
---@return faultline.GrpcResult
function T:grpc(opts) end
---Records a failure when cond is false and continues; returns whether it held.
---@param cond any
---@param msg? string
---@return boolean
function T:expect(cond, msg) end
---Records a failure and stops the scenario when cond is false; returns cond.
---@generic V
---@param cond V
---@param msg? string
---@return V
function T:assert(cond, msg) end
---Polls fn until it returns a true value (returned); fails the scenario after timeout.
---@generic V
---@param fn fun(): V
---@param timeout? faultline.Duration default "5s"
---@param msg? string
---@return V
function T:eventually(fn, timeout, msg) end
---Checks fn every 10 ms for all of during; fails the scenario at the first false.
---@param fn fun(): any
---@param during faultline.Duration
---@param msg? string
---@return true
function T:always(fn, during, msg) end
---Adds text to the timeline (and the reports).
---@param text string
function T:note(text) end
---Replica n (default 1) of service.
---@param service string
---@param n? integer
---@return faultline.Instance
function T:instance(service, n) end
---The service's instances, or every instance.
---@param service? string
---@return faultline.Instance[]
function T:instances(service) end
---What the instance printed (stdout and stderr, the last 64 KiB, across restarts).
---@param inst faultline.InstanceRef
---@return string
function T:log(inst) end
---Seconds since the scenario started.
---@return number
function T:now() end
---Like math.random, from the scenario's seeded generator.
---@param m? integer
---@param n? integer
---@return number
function T:random(m, n) end
---Starts the instance and waits until it is ready.
---@param inst faultline.InstanceRef
---@return faultline.Instance
function T:start(inst) end
---SIGKILL to its process group; waits until it is gone.
---@param inst faultline.InstanceRef
---@return faultline.Instance
function T:crash(inst) end
---SIGTERM, SIGKILL after grace; waits until it is gone.
---@param inst faultline.InstanceRef
---@param grace? faultline.Duration
---@return faultline.Instance
function T:stop(inst, grace) end
---Stops (or crashes) it if running, starts it, waits until ready.
---@param inst faultline.InstanceRef
---@param opts? { crash?: boolean, grace?: faultline.Duration }
---@return faultline.Instance
function T:restart(inst, opts) end
---SIGSTOP to the service and its descendants; returns once they have stopped (2 s at most).
---@param inst faultline.InstanceRef
---@return faultline.Instance
function T:pause(inst) end
---SIGCONT.
---@param inst faultline.InstanceRef
---@return faultline.Instance
function T:resume(inst) end
---Every link from an instance in a to an instance in b.
---@param a faultline.Selector
---@param b faultline.Selector
---@return faultline.Links
function T:link(a, b) end
---Every link of the topology.
---@return faultline.Links
function T:links() end
---Nothing passes between a and b (with oneway: a cannot reach b).
---@param a faultline.Selector
---@param b faultline.Selector
---@param opts? { oneway?: boolean }
---@return faultline.Fault
function T:partition(a, b, opts) end
---inst can reach no one and no one can reach it.
---@param inst faultline.InstanceRef
---@return faultline.Fault
function T:isolate(inst) end
---Removes every fault from every link.
---@return faultline.Links
function T:heal() end
---Starts a seeded random schedule of faults in the background: quiet for about interval, a
---fault drawn from faults on a target drawn from targets, held for about hold, then healed;
---until duration. Returns at once.
---@param opts faultline.NemesisOpts
---@return faultline.Nemesis
function T:nemesis(opts) end
---The service's instances whose own registration passes every check now (fake Consul).
---@param service string
---@return faultline.Instance[]
function T:healthy(service) end
---What inst would be told now for service (passing only, addresses as inst sees them).
---@param inst faultline.InstanceRef
---@param service string
---@return faultline.ConsulEntry[]
function T:consul_view(inst, service) end
---The traces the collector holds with a span of service (and named name) that started at or
---after since (seconds since the scenario started), as trees.
---@param opts? { service?: string, name?: string, since?: faultline.Duration }
---@return faultline.Trace[]
function T:traces(opts) end
---The collector's base URL, as instances get it in OTEL_EXPORTER_OTLP_ENDPOINT.
---@return string
function T:collector() end
---Requests served per instance of service since `since` (default: when the scenario function
---began), counted from its SERVER spans by service.instance.id; every instance is listed, 0
---included. A usage error when the service's tracing is off (OTEL_SDK_DISABLED=true).
---@param service string
---@param opts? { since?: faultline.Duration }
---@return table<string, integer>
function T:distribution(service, opts) end
---Records (and continues) whether every instance up for the whole window served within
---tolerance of the even share (total / instances): the largest |count - share| / share must
---be at most tolerance. Re-checked until it holds or within has passed.
---@param service string
---@param opts? { tolerance?: number, since?: faultline.Duration, within?: faultline.Duration }
---@return boolean
function T:expect_balanced(service, opts) end
---Records (and continues) whether every trace rooted at service `root` since `since` is
---connected (one root, no orphan, not started by a CLIENT span) and no call made more than
---max_attempts attempts; waits up to within (default "2s") for late exports.
---@param opts { root: string, complete?: boolean, max_attempts?: integer, within?: faultline.Duration, since?: faultline.Duration }
---@return boolean
function T:expect_traces(opts) end
---Records (and continues) whether, within `within` (default "3s"), every running client of
---service was last told by its Consul agent exactly the instances of service that are up and
---pass their checks, and no instance that exited on its own is still registered.
---@param service string
---@param opts? { within?: faultline.Duration }
---@return boolean
function T:expect_discovery(service, opts) end
