// runner.mjs runs Step Functions executions with aws-local-stepfunctions
// for the sandbox (package stepfunctions embeds it and starts it with
// `node --input-type=module -e <this file>`). One process hosts every
// execution of a sandbox: loading the interpreter and validating a
// definition cost a Node.js process about 0.4 s of CPU, so a process per
// execution made a 1,000-rotation fleet spend most of a 2-core machine
// starting interpreters. It speaks JSON lines: commands on stdin, events on
// stdout, each carrying the execution's "exec" id (a definition's "validate"
// carries a "req" id instead). It never calls AWS itself: every Task state
// is handed to the sandbox as a "task" message and finished by "taskResult".
// A callback Task (.waitForTaskToken) carries the token its Parameters saw
// as $$.Task.Token (made here, one per attempt); the sandbox waits for
// SendTaskSuccess/SendTaskFailure with it and answers "taskResult", or
// "taskTimedOut" when the Task's (shortened) timeout passes first.
//
// Each execution keeps its own virtual clock and timers: the interpreter's
// setTimeout and Date are patched once for the process and find the
// execution they serve through an AsyncLocalStorage, which Node.js carries
// through every promise, timer and immediate an execution's code creates.
//
// Time: Wait states, Retry pauses and the execution's TimeoutSeconds all go
// through setTimeout. Here setTimeout waits ms × waitScale of real time (a
// Retry pause: ms × retryScale, since it competes with real work: the
// Lambda instances a throttled Task waits for run in real time, so a Retry
// pause ends only when its own real time has passed, never early because
// the sandbox clock jumped ahead — another execution's 7-day Wait moves it
// days in milliseconds),
// and Date reads a virtual clock (the sandbox clock at start + real elapsed
// + time skipped by shortened timers). While a shortened timer runs, the
// virtual clock flows 1/waitScale times faster than real time, and the
// sandbox hears {"type":"advance"} every few milliseconds: a 7-day Wait
// moves the sandbox clock through the 7 days, so a consumer that keeps
// calling AWS during the wait leaves last-used dates spread over them, as
// it would in AWS, rather than all at the wait's first instant.

import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { AsyncLocalStorage } from 'node:async_hooks';

const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  process.stderr.write(`aws-local-stepfunctions needs Node.js >= 22; this is ${process.version}\n`);
  process.exit(3);
}

// Private handles: the runner's own needs never go through the patched ones.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const realSetInterval = globalThis.setInterval;
const realClearInterval = globalThis.clearInterval;
const RealDate = globalThis.Date;
const perf = globalThis.performance;
const stdout = process.stdout;

// Nothing but protocol lines goes to stdout.
for (const k of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
  console[k] = (...a) => process.stderr.write(a.map(String).join(' ') + '\n');
}

function write(msg) {
  stdout.write(JSON.stringify(msg) + '\n');
}

// send writes one of execution x's messages.
function send(x, msg) {
  msg.exec = x.id;
  write(msg);
}

// ---- executions ---------------------------------------------------------------

// The execution whose code is running: set by start and by every command
// that reaches an execution, and carried by Node.js into everything that
// code schedules.
const als = new AsyncLocalStorage();
const execs = new Map(); // exec id → execution

// Exec is one execution's state: its virtual clock, its timers and its
// Tasks.
class Exec {
  constructor(id, msg) {
    this.id = id;
    this.waitScale = msg.waitScale > 0 ? msg.waitScale : 1;
    this.retryScale = msg.retryScale > 0 ? msg.retryScale : this.waitScale;
    // retryNext: a Task just failed, so the next pause, if it comes before
    // the event loop turns (the interpreter's catch → Retry → sleep is all
    // microtasks), is that Task's Retry pause.
    this.retryNext = false;
    this.base = msg.clockMs; // virtual ms at realStart
    this.realStart = perf.now();
    this.skipped = 0; // virtual ms skipped by shortened timers and clock moves
    this.last = 0; // the clock never runs backwards
    // nextKind classifies the next setTimeout call: the interpreter makes
    // the execution timeout right after run() begins and a Task's timeout
    // right after calling the Task's handler, both synchronously.
    this.nextKind = null; // null (a pause: Wait, or Retry if retryNext) | 'deadline' | {task: stateName, id, callback}
    this.timers = new Set(); // pending timers
    this.taskStates = new Map(); // Task state name → its definition, as written
    // armed: task id → the ms the interpreter set that Task's timeout to. A
    // Task whose handler ran but that was never armed was given up by the
    // interpreter (its timeout would not resolve) before it began.
    this.armed = new Map();
    // A callback Task (.waitForTaskToken) is timed by the sandbox, which
    // shortens its timeout and owns the race with SendTaskSuccess; when it
    // says "taskTimedOut" the interpreter's own timeout callback runs, so
    // the error is the interpreter's States.Timeout (which
    // States.TaskFailed does not match).
    this.callbackTimeouts = new Map(); // task id → {h, cb, args}
    this.pending = new Map(); // task id → {resolve, reject}
    this.taskSeq = 0;
    // The token of the callback Task about to start: made when its
    // Parameters read $$.Task.Token (all reads of one attempt see the same
    // token), taken by its handler, which runs synchronously right after;
    // a retry's Parameters make a new one, as AWS gives each attempt its own.
    this.nextToken = null;
    this.execution = null;
    this.finished = false;
  }

  vnow() {
    const t = this.base + (perf.now() - this.realStart) + this.skipped;
    if (t > this.last) this.last = t;
    return this.last;
  }

  vnowMs() {
    return Math.floor(this.vnow());
  }

  // skipTo moves the virtual clock forward to t; it reports whether it moved.
  skipTo(t) {
    const now = this.vnow();
    if (t <= now) return false;
    this.skipped += t - now;
    this.vnow();
    return true;
  }
}

// finish sends x's result once and forgets x: its timers stop, and what
// its interpreter still does reaches nothing.
function finish(x, msg) {
  if (x.finished) return;
  x.finished = true;
  for (const t of x.timers) {
    realClearTimeout(t.real);
    handles.delete(t.h);
  }
  x.timers.clear();
  for (const { h } of x.callbackTimeouts.values()) handles.delete(h);
  x.callbackTimeouts.clear();
  x.pending.clear();
  execs.delete(x.id);
  msg.exec = x.id;
  let line;
  try {
    line = JSON.stringify(msg);
  } catch (e) {
    // An output too deep for the stack: the run cannot say it.
    line = JSON.stringify({ type: 'result', exec: x.id, status: 'FAILED', error: 'States.Runtime', cause: `The sandbox's Step Functions runner could not encode the execution's result: ${e.message}` });
  }
  stdout.write(line + '\n');
}

// crashed fails the execution whose code threw where no one catches it
// (an input nested too deep to encode, a bug here): it alone, where a
// process of its own once died with it. Node.js runs these handlers in
// the async context of the code that threw.
function crashed(err, x = als.getStore()) {
  const what = String(err?.stack ?? err);
  if (!x) {
    process.stderr.write(`runner: ${what}\n`);
    return;
  }
  if (x.execution) x.execution.abort();
  finish(x, { type: 'result', status: 'FAILED', error: 'States.Runtime', cause: `The sandbox's Step Functions runner failed running the execution: ${what.slice(0, 2000)}` });
}
process.on('uncaughtException', crashed);
process.on('unhandledRejection', crashed);

// ---- the virtual clock ----------------------------------------------------

function vnowMs() {
  const x = als.getStore();
  return x ? x.vnowMs() : RealDate.now();
}

function VDate(...args) {
  if (!new.target) return new RealDate(vnowMs()).toString();
  return args.length === 0 ? new RealDate(vnowMs()) : new RealDate(...args);
}
VDate.prototype = RealDate.prototype;
VDate.now = vnowMs;
VDate.parse = RealDate.parse;
VDate.UTC = RealDate.UTC;
globalThis.Date = VDate;

// ---- timers -----------------------------------------------------------------

let timerSeq = 0;
// handles: every pending virtual timer's handle → its timer, or a callback
// Task's timeout handle → {x, taskId}.
const handles = new Map();

class Handle {
  constructor(id) {
    this.id = id;
  }
  ref() {
    return this;
  }
  unref() {
    return this;
  }
  hasRef() {
    return true;
  }
  refresh() {
    return this;
  }
  [Symbol.toPrimitive]() {
    return this.id;
  }
}
const never = new Handle(0); // a timer that never fires

function vSetTimeout(cb, ms, ...args) {
  const x = als.getStore();
  if (!x) return realSetTimeout(cb, ms, ...args); // not an execution's
  if (x.finished) return never;
  const kind = x.nextKind;
  x.nextKind = null;
  ms = Math.max(0, Number(ms) || 0);
  if (kind && typeof kind === 'object') {
    x.armed.set(kind.id, ms);
    if (kind.callback) {
      const h = new Handle(++timerSeq);
      x.callbackTimeouts.set(kind.id, { h, cb, args });
      handles.set(h, { x, taskId: kind.id });
      return h;
    }
    // A Task's own timeout is real time: the work it bounds runs in real time.
    const st = x.taskStates.get(kind.task);
    if (!st || (st.TimeoutSeconds === undefined && st.TimeoutSecondsPath === undefined)) {
      return never; // AWS Standard: no TimeoutSeconds, no task timeout
    }
    return realSetTimeout(cb, ms, ...args);
  }
  const h = new Handle(++timerSeq);
  const startV = x.vnow();
  let timerKind = 'deadline';
  if (kind !== 'deadline') {
    timerKind = x.retryNext ? 'retry' : 'pause';
    x.retryNext = false;
  }
  const t = { x, h, seq: timerSeq, startV, due: startV + ms, kind: timerKind, cb, args, realDone: false };
  // A Wait lasts ms × waitScale, a Retry pause ms × retryScale; a deadline
  // fires when virtual time gets there, by real time passing or by pauses
  // skipping ahead. A Wait (and a deadline) also ends when the sandbox
  // clock gets past it (a test moved it, another execution's Wait); a Retry
  // pause only when its real time is up (see fireable).
  const realMs = t.kind === 'pause' ? ms * x.waitScale : t.kind === 'retry' ? ms * x.retryScale : ms;
  t.realMs = realMs;
  t.realStart = perf.now();
  t.real = realSetTimeout(() => {
    t.realDone = true;
    fireUpTo(x, t.due);
  }, realMs);
  x.timers.add(t);
  handles.set(h, t);
  if (t.kind !== 'deadline' && realMs >= 2 * TICK_MS) flowing.add(x);
  if (flowing.size > 0 && !ticker) ticker = realSetInterval(tick, TICK_MS);
  return h;
}

// fireable says whether t is due at virtual time target. A Retry pause is
// due only once its own real time has passed as well: what it waits for
// (a Lambda instance to come free, a throttled API's tokens) comes in real
// time, and 200 executions' Waits moving the shared clock would otherwise
// end every pending Retry pause at once, so a throttled Task would spend
// its attempts in a second of real time.
function fireable(t, target) {
  return t.due <= target && (t.kind !== 'retry' || t.realDone);
}

// tick lets each execution's virtual time flow through its earliest
// pending pause, in proportion to the real time that pause has run; the
// sandbox hears the furthest any execution's clock got, once a tick.
const TICK_MS = 5;
let ticker = null;
const flowing = new Set(); // executions with a pause long enough to flow through
function tick() {
  let furthest = 0;
  for (const x of flowing) {
    const v = flow(x);
    if (v === null) flowing.delete(x);
    else if (v > furthest) furthest = v;
  }
  if (furthest > 0) write({ type: 'advance', toMs: furthest });
  if (flowing.size === 0) {
    realClearInterval(ticker);
    ticker = null;
  }
}

// flow moves x's clock through its earliest pending pause; it returns the
// clock's new time if it moved, 0 if not, and null if x has no pause left.
function flow(x) {
  if (x.finished) return null;
  let first = null;
  const now = x.vnow();
  for (const t of x.timers) {
    // A Retry pause the clock has already passed has no time left to flow
    // through: it just waits out its real time.
    if (t.kind !== 'deadline' && t.due > now && (!first || t.due < first.due)) first = t;
  }
  if (!first) return null;
  const frac = first.realMs > 0 ? Math.min(1, (perf.now() - first.realStart) / first.realMs) : 1;
  const target = first.startV + frac * (first.due - first.startV);
  for (const t of x.timers) {
    if (fireable(t, target)) {
      fireUpTo(x, target); // a deadline (execution timeout) on the way fires at its own time
      return 0;
    }
  }
  return x.skipTo(target) ? x.vnowMs() : 0;
}

function vClearTimeout(h) {
  if (!(h instanceof Handle)) {
    realClearTimeout(h);
    return;
  }
  const t = handles.get(h);
  if (!t) return;
  handles.delete(h);
  if (t.taskId !== undefined) {
    t.x.callbackTimeouts.delete(t.taskId);
    return;
  }
  realClearTimeout(t.real);
  t.x.timers.delete(t);
}

// fireUpTo fires, one by one in virtual order, every timer of x due at or
// before target, moving x's clock to each one's due time. Promise
// continuations run between two firings, so each sees its own time.
function fireUpTo(x, target) {
  let first = null;
  for (const t of x.timers) {
    if (fireable(t, target) && (!first || t.due < first.due || (t.due === first.due && t.seq < first.seq))) first = t;
  }
  if (!first) return;
  x.timers.delete(first);
  handles.delete(first.h);
  realClearTimeout(first.real);
  if (x.skipTo(first.due)) write({ type: 'advance', toMs: x.vnowMs() });
  try {
    als.run(x, () => first.cb(...first.args));
  } catch (e) {
    // Thrown out of x's context (a "clock" command fired it): still x's.
    crashed(e, x);
  } finally {
    setImmediate(() => fireUpTo(x, target));
  }
}

globalThis.setTimeout = vSetTimeout;
globalThis.clearTimeout = vClearTimeout;

// ---- the interpreter --------------------------------------------------------

const lib = await import(pathToFileURL(process.env.SFN_LOCAL_LIB).href);
const { StateMachine, ExecutionError, ExecutionAbortedError, ExecutionTimeoutError } = lib;

const validation = { checkArn: true, checkPaths: true };

// Hidden Parameters: the interpreter resolves TimeoutSecondsPath against
// the Task's effective input (after Parameters), AWS against the state's
// input. prepare copies the path into the Parameters, where it resolves
// against the state's input, and points TimeoutSecondsPath at the copy;
// the handler takes the copies out before the sandbox sees the Parameters.
const HIDDEN_TIMEOUT = '__sandboxTimeoutSeconds';
const HIDDEN_HEARTBEAT = '__sandboxHeartbeatSeconds';

function isCallback(resource) {
  return typeof resource === 'string' && resource.startsWith('arn:aws:states:::') && resource.endsWith('.waitForTaskToken');
}

// prepare returns the definition the interpreter runs, and every Task
// state, in Map item processors and Parallel branches too (state names are
// unique across a whole state machine), each as written.
function prepare(definition) {
  const copy = structuredClone(definition);
  const taskStates = new Map();
  const walk = (def) => {
    for (const [name, st] of Object.entries(def?.States ?? {})) {
      if (st.Type === 'Task') {
        taskStates.set(name, structuredClone(st));
        const params = st.Parameters;
        if (params && typeof params === 'object' && !Array.isArray(params)) {
          if (typeof st.TimeoutSecondsPath === 'string') {
            params[HIDDEN_TIMEOUT + '.$'] = st.TimeoutSecondsPath;
            st.TimeoutSecondsPath = '$.' + HIDDEN_TIMEOUT;
          }
          if (typeof st.HeartbeatSecondsPath === 'string' && isCallback(st.Resource)) {
            params[HIDDEN_HEARTBEAT + '.$'] = st.HeartbeatSecondsPath;
          }
        }
      }
      if (st.Type === 'Map') walk(st.ItemProcessor ?? st.Iterator);
      if (st.Type === 'Parallel') for (const b of st.Branches ?? []) walk(b);
    }
  };
  walk(copy);
  return { definition: copy, taskStates };
}

// machines: a definition's text → its prepared machine. A definition is
// validated once (the validator costs about 100 ms a definition); the
// machine that runs it skips validation, as do the item processors of its
// Map states, which the interpreter builds afresh for every item. Bounded:
// a sandbox has a few definitions, a long test run a few hundred.
const machines = new Map();
const MAX_MACHINES = 256;

function machine(definition) {
  const key = JSON.stringify(definition);
  let m = machines.get(key);
  if (m) return m;
  const { definition: prepared, taskStates } = prepare(definition);
  new StateMachine(prepared, { validationOptions: validation }); // throws if invalid
  m = { sm: new StateMachine(prepared, { validationOptions: { ...validation, noValidate: true } }), taskStates, hasDeadline: prepared.TimeoutSeconds !== undefined };
  if (machines.size >= MAX_MACHINES) machines.delete(machines.keys().next().value);
  machines.set(key, m);
  return m;
}

// refPath resolves a reference path ($.a.b, $['a'][0]) in value: the
// HeartbeatSecondsPath of a Task without Parameters, whose effective input
// is its state input.
function refPath(path, value) {
  if (typeof path !== 'string' || !path.startsWith('$')) return undefined;
  const step = /\.([^.[\]]+)|\['([^']*)'\]|\[(\d+)\]/y;
  step.lastIndex = 1;
  let v = value;
  while (step.lastIndex < path.length) {
    const m = step.exec(path);
    if (!m || v === null || typeof v !== 'object') return undefined;
    v = v[m[1] ?? m[2] ?? Number(m[3])];
  }
  return v;
}

// ---- task tokens ----------------------------------------------------------

// newToken is a callback Task's token: base64 of a version byte, "sbx" and
// 64 random bytes: opaque and unguessable, as AWS's are, with +, / and = in
// it as theirs have (the sandbox, callbacks.go, checks this shape).
function newToken() {
  return Buffer.concat([Buffer.from([1]), Buffer.from('sbx'), randomBytes(64)]).toString('base64');
}

function taskProxy(x) {
  return contextProxy({ Token: () => (x.nextToken ??= newToken()) });
}

function taskHandler(x, stateName, st) {
  const resource = st.Resource;
  const callback = isCallback(resource);
  return async (input) => {
    const id = ++x.taskSeq;
    // The interpreter sets this Task's timeout right after this call returns.
    x.nextKind = { task: stateName, id, callback };
    queueMicrotask(() => {
      if (x.nextKind && x.nextKind.id === id) x.nextKind = null;
    });
    const token = callback ? (x.nextToken ?? newToken()) : undefined;
    x.nextToken = null;
    // Let the events already dispatched (StateEntered…) reach stdout first.
    await new Promise((r) => setImmediate(r));
    if (!x.armed.has(id) || x.finished) return new Promise(() => {});
    const ms = x.armed.get(id);
    x.armed.delete(id);
    let params = input === undefined ? null : input;
    const hidden = {};
    if (params && typeof params === 'object' && !Array.isArray(params) && (HIDDEN_TIMEOUT in params || HIDDEN_HEARTBEAT in params)) {
      params = { ...params };
      hidden.heartbeat = params[HIDDEN_HEARTBEAT];
      delete params[HIDDEN_TIMEOUT];
      delete params[HIDDEN_HEARTBEAT];
    }
    const msg = { type: 'task', id, state: stateName, resource, input: params };
    if (st.TimeoutSeconds !== undefined || st.TimeoutSecondsPath !== undefined) msg.timeoutSeconds = Math.round(ms / 1000);
    if (callback) {
      msg.token = token;
      let hb = st.HeartbeatSeconds;
      if (hb === undefined && st.HeartbeatSecondsPath !== undefined) {
        hb = st.Parameters !== undefined ? hidden.heartbeat : refPath(st.HeartbeatSecondsPath, input);
      }
      if (hb !== undefined) msg.heartbeatSeconds = hb;
    }
    const p = new Promise((resolve, reject) => x.pending.set(id, { resolve, reject }));
    send(x, msg);
    return p;
  };
}

// contextProxy is a context object whose fields are read when the
// interpreter reads them ($$.State.EnteredTime is the time it is read).
function contextProxy(fields) {
  return new Proxy(
    {},
    {
      get: (_, k) => (typeof k === 'string' && fields[k] ? fields[k]() : undefined),
      has: (_, k) => typeof k === 'string' && k in fields,
      ownKeys: () => Object.keys(fields),
      getOwnPropertyDescriptor: (_, k) =>
        typeof k === 'string' && fields[k]
          ? { value: fields[k](), writable: true, enumerable: true, configurable: true }
          : undefined,
    },
  );
}

function stateProxy(x) {
  return contextProxy({ EnteredTime: () => new RealDate(x.vnowMs()).toISOString() });
}

function describe(err) {
  let inner = err;
  if (err instanceof ExecutionError && err.cause) inner = err.cause;
  let cause = inner?.cause ?? inner?.message ?? String(inner);
  if (typeof cause !== 'string') cause = JSON.stringify(cause);
  const error = inner?.name ?? 'States.Runtime';
  // The interpreter's own errors (States.Timeout…) repeat their name as the
  // message; AWS gives them no cause.
  if (cause === error) cause = '';
  return { error, cause };
}

async function run(x, msg) {
  let m;
  try {
    m = machine(msg.definition);
  } catch (e) {
    finish(x, { type: 'result', status: 'FAILED', error: 'States.Runtime', cause: String(e?.message ?? e) });
    return;
  }
  x.taskStates = m.taskStates;
  const handlers = {};
  for (const [name, st] of m.taskStates) handlers[name] = taskHandler(x, name, st);
  const context = {
    Execution: {
      Id: msg.executionArn,
      Input: msg.input, // as AWS's context object has it ($$.Execution.Input)
      Name: msg.name,
      RoleArn: msg.roleArn,
      StartTime: msg.startTime,
      RedriveCount: 0,
    },
    StateMachine: { Id: msg.stateMachineArn, Name: msg.stateMachineName },
    State: stateProxy(x),
    Task: taskProxy(x),
  };
  if (m.hasDeadline) x.nextKind = 'deadline';
  x.execution = m.sm.run(msg.input, { overrides: { taskResourceLocalHandlers: handlers }, context });
  x.nextKind = null;

  const events = (async () => {
    for await (const event of x.execution.eventLogs) {
      if (x.finished) break;
      send(x, { type: 'event', event });
    }
  })();
  let result;
  try {
    const output = await x.execution.result;
    result = { type: 'result', status: 'SUCCEEDED', output: output === undefined ? null : output };
  } catch (e) {
    if (e instanceof ExecutionAbortedError) result = { type: 'result', status: 'ABORTED' };
    else if (e instanceof ExecutionTimeoutError)
      result = { type: 'result', status: 'TIMED_OUT', error: 'States.Timeout', cause: 'The execution timed out.' };
    else result = { type: 'result', status: 'FAILED', ...describe(e) };
  }
  // Every event before the result; the log closes with the execution's end.
  await Promise.race([events, new Promise((r) => realSetTimeout(r, 1000))]);
  finish(x, result);
}

function start(msg) {
  if (execs.has(msg.exec)) return;
  const x = new Exec(msg.exec, msg);
  execs.set(x.id, x);
  als.run(x, () => {
    run(x, msg).catch((e) => finish(x, { type: 'result', status: 'FAILED', error: 'States.Runtime', cause: String(e?.stack ?? e) }));
  });
}

function validate(msg) {
  try {
    new StateMachine(msg.definition, { validationOptions: validation });
    write({ type: 'valid', req: msg.req });
  } catch (e) {
    write({ type: 'invalid', req: msg.req, message: String(e?.message ?? e) });
  }
}

// command handles one command to execution x.
function command(x, msg) {
  switch (msg.type) {
    case 'taskResult': {
      const p = x.pending.get(msg.id);
      if (!p) return; // timed out or aborted meanwhile
      x.pending.delete(msg.id);
      if (msg.error !== undefined && msg.error !== null) {
        const err = new Error(msg.cause ?? '');
        err.name = msg.error;
        x.retryNext = true;
        setImmediate(() => {
          x.retryNext = false;
        });
        p.reject(err);
      } else {
        p.resolve(msg.output === undefined ? null : msg.output);
      }
      break;
    }
    case 'taskTimedOut': {
      // The sandbox timed a callback Task out: the interpreter's own
      // timeout fires, as if its timer had.
      const p = x.pending.get(msg.id);
      if (!p) return;
      x.pending.delete(msg.id);
      const t = x.callbackTimeouts.get(msg.id);
      if (t) {
        x.callbackTimeouts.delete(msg.id);
        handles.delete(t.h);
        t.cb(...t.args);
      } else {
        const err = new Error('States.Timeout');
        err.name = 'States.Timeout';
        p.reject(err);
      }
      break;
    }
    case 'forget':
      // The execution ended in the sandbox (its result, StopExecution): it
      // stops here, and what it would still say reaches no one.
      if (x.execution) x.execution.abort();
      finish(x, { type: 'result', status: 'ABORTED' });
      break;
    default:
      process.stderr.write(`runner: unknown command ${msg.type}\n`);
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (!line.trim()) return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    process.stderr.write(`runner: bad command: ${e.message}\n`);
    return;
  }
  switch (msg.type) {
    case 'start':
      start(msg);
      return;
    case 'validate':
      validate(msg);
      return;
    case 'clock':
      // The sandbox clock moved (a test, another execution's Wait): time
      // passes in every execution, and whatever was due fires.
      for (const x of execs.values()) {
        if (x.skipTo(msg.nowMs)) fireUpTo(x, x.vnow());
      }
      return;
  }
  const x = execs.get(msg.exec);
  if (!x) return; // ended meanwhile
  try {
    als.run(x, () => command(x, msg));
  } catch (e) {
    crashed(e, x); // thrown out of x's context: still x's
  }
});
rl.on('close', () => {
  // The sandbox went away: nothing can finish its executions any more.
  process.exit(execs.size > 0 ? 1 : 0);
});
