// runner.mjs runs one Step Functions execution with aws-local-stepfunctions
// for the sandbox (package stepfunctions embeds it and starts it with
// `node --input-type=module -e <this file>`). It speaks JSON lines: commands
// on stdin, events on stdout. It never calls AWS itself: every Task state
// is handed to the sandbox as a "task" message and finished by "taskResult".
// A callback Task (.waitForTaskToken) carries the token its Parameters saw
// as $$.Task.Token (made here, one per attempt); the sandbox waits for
// SendTaskSuccess/SendTaskFailure with it and answers "taskResult", or
// "taskTimedOut" when the Task's (shortened) timeout passes first.
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

function send(msg) {
  stdout.write(JSON.stringify(msg) + '\n');
}

// ---- the virtual clock ----------------------------------------------------

let waitScale = 1;
let retryScale = 1;
// retryNext: a Task just failed, so the next pause, if it comes before the
// event loop turns (the interpreter's catch → Retry → sleep is all
// microtasks), is that Task's Retry pause.
let retryNext = false;
let base = RealDate.now(); // virtual ms at realStart
let realStart = perf.now();
let skipped = 0; // virtual ms skipped by shortened timers and clock moves
let last = 0; // the clock never runs backwards

function vnow() {
  const t = base + (perf.now() - realStart) + skipped;
  if (t > last) last = t;
  return last;
}
function vnowMs() {
  return Math.floor(vnow());
}
// skipTo moves the virtual clock forward to t; it reports whether it moved.
function skipTo(t) {
  const now = vnow();
  if (t <= now) return false;
  skipped += t - now;
  vnow();
  return true;
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

// nextKind classifies the next setTimeout call: the interpreter makes the
// execution timeout right after run() begins and a Task's timeout right
// after calling the Task's handler, both synchronously.
let nextKind = null; // null (a pause: Wait, or Retry if retryNext) | 'deadline' | {task: stateName, id, callback}
const timers = new Map(); // handle → timer
let timerSeq = 0;
const taskStates = new Map(); // Task state name → its definition, as written
// armed: task id → the ms the interpreter set that Task's timeout to. A
// Task whose handler ran but that was never armed was given up by the
// interpreter (its timeout would not resolve) before it began.
const armed = new Map();
// A callback Task (.waitForTaskToken) is timed by the sandbox, which
// shortens its timeout and owns the race with SendTaskSuccess; when it says
// "taskTimedOut" the interpreter's own timeout callback runs, so the error
// is the interpreter's States.Timeout (which States.TaskFailed does not match).
const callbackTimeouts = new Map(); // task id → {h, cb, args}
const callbackHandles = new Map(); // handle → task id

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
  const kind = nextKind;
  nextKind = null;
  ms = Math.max(0, Number(ms) || 0);
  if (kind && typeof kind === 'object') {
    armed.set(kind.id, ms);
    if (kind.callback) {
      const h = new Handle(++timerSeq);
      callbackTimeouts.set(kind.id, { h, cb, args });
      callbackHandles.set(h, kind.id);
      return h;
    }
    // A Task's own timeout is real time: the work it bounds runs in real time.
    const st = taskStates.get(kind.task);
    if (!st || (st.TimeoutSeconds === undefined && st.TimeoutSecondsPath === undefined)) {
      return never; // AWS Standard: no TimeoutSeconds, no task timeout
    }
    return realSetTimeout(cb, ms, ...args);
  }
  const h = new Handle(++timerSeq);
  const startV = vnow();
  let timerKind = 'deadline';
  if (kind !== 'deadline') {
    timerKind = retryNext ? 'retry' : 'pause';
    retryNext = false;
  }
  const t = { h, seq: timerSeq, startV, due: startV + ms, kind: timerKind, cb, args, realDone: false };
  // A Wait lasts ms × waitScale, a Retry pause ms × retryScale; a deadline
  // fires when virtual time gets there, by real time passing or by pauses
  // skipping ahead. A Wait (and a deadline) also ends when the sandbox
  // clock gets past it (a test moved it, another execution's Wait); a Retry
  // pause only when its real time is up (see fireable).
  const realMs = t.kind === 'pause' ? ms * waitScale : t.kind === 'retry' ? ms * retryScale : ms;
  t.realMs = realMs;
  t.realStart = perf.now();
  t.real = realSetTimeout(() => {
    t.realDone = true;
    fireUpTo(t.due);
  }, realMs);
  timers.set(h, t);
  if (t.kind !== 'deadline' && realMs >= 2 * TICK_MS && !ticker) ticker = realSetInterval(tick, TICK_MS);
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

// tick lets virtual time flow through the earliest pending pause, in
// proportion to the real time it has run.
const TICK_MS = 5;
let ticker = null;
function tick() {
  let first = null;
  const now = vnow();
  for (const t of timers.values()) {
    // A Retry pause the clock has already passed has no time left to flow
    // through: it just waits out its real time.
    if (t.kind !== 'deadline' && t.due > now && (!first || t.due < first.due)) first = t;
  }
  if (!first) {
    realClearInterval(ticker);
    ticker = null;
    return;
  }
  const frac = first.realMs > 0 ? Math.min(1, (perf.now() - first.realStart) / first.realMs) : 1;
  const target = first.startV + frac * (first.due - first.startV);
  for (const t of timers.values()) {
    if (fireable(t, target)) {
      fireUpTo(target); // a deadline (execution timeout) on the way fires at its own time
      return;
    }
  }
  if (skipTo(target)) send({ type: 'advance', toMs: vnowMs() });
}

function vClearTimeout(h) {
  if (h instanceof Handle) {
    if (callbackHandles.has(h)) {
      callbackTimeouts.delete(callbackHandles.get(h));
      callbackHandles.delete(h);
      return;
    }
    const t = timers.get(h);
    if (t) {
      realClearTimeout(t.real);
      timers.delete(h);
    }
    return;
  }
  realClearTimeout(h);
}

// fireUpTo fires, one by one in virtual order, every timer due at or before
// target, moving the virtual clock to each one's due time. Promise
// continuations run between two firings, so each sees its own time.
function fireUpTo(target) {
  let first = null;
  for (const t of timers.values()) {
    if (fireable(t, target) && (!first || t.due < first.due || (t.due === first.due && t.seq < first.seq))) first = t;
  }
  if (!first) return;
  timers.delete(first.h);
  realClearTimeout(first.real);
  if (skipTo(first.due)) send({ type: 'advance', toMs: vnowMs() });
  try {
    first.cb(...first.args);
  } finally {
    setImmediate(() => fireUpTo(target));
  }
}

globalThis.setTimeout = vSetTimeout;
globalThis.clearTimeout = vClearTimeout;

// ---- the execution ------------------------------------------------------------

const lib = await import(pathToFileURL(process.env.SFN_LOCAL_LIB).href);
const { StateMachine, ExecutionError, ExecutionAbortedError, ExecutionTimeoutError } = lib;

const pending = new Map(); // task id → {resolve, reject}
let taskSeq = 0;
let execution = null;
let finished = false;

function finish(msg) {
  if (finished) return;
  finished = true;
  stdout.write(JSON.stringify(msg) + '\n', () => process.exit(0));
}

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

// prepare returns the definition the interpreter runs, and finds every Task
// state, in Map item processors and Parallel branches too (state names are
// unique across a whole state machine), keeping each as written.
function prepare(definition) {
  const copy = structuredClone(definition);
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
  return copy;
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

// The token of the callback Task about to start: made when its Parameters
// read $$.Task.Token (all reads of one attempt see the same token), taken
// by its handler, which runs synchronously right after; a retry's
// Parameters make a new one, as AWS gives each attempt its own.
let nextToken = null;

function taskProxy() {
  return contextProxy({ Token: () => (nextToken ??= newToken()) });
}

function taskHandler(stateName, st) {
  const resource = st.Resource;
  const callback = isCallback(resource);
  return async (input) => {
    const id = ++taskSeq;
    // The interpreter sets this Task's timeout right after this call returns.
    nextKind = { task: stateName, id, callback };
    queueMicrotask(() => {
      if (nextKind && nextKind.id === id) nextKind = null;
    });
    const token = callback ? (nextToken ?? newToken()) : undefined;
    nextToken = null;
    // Let the events already dispatched (StateEntered…) reach stdout first.
    await new Promise((r) => setImmediate(r));
    if (!armed.has(id)) return new Promise(() => {});
    const ms = armed.get(id);
    armed.delete(id);
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
    const p = new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
    send(msg);
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

function stateProxy() {
  return contextProxy({ EnteredTime: () => new RealDate(vnowMs()).toISOString() });
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

async function start(msg) {
  waitScale = msg.waitScale > 0 ? msg.waitScale : 1;
  retryScale = msg.retryScale > 0 ? msg.retryScale : waitScale;
  base = msg.clockMs;
  realStart = perf.now();
  skipped = 0;
  last = 0;
  const definition = prepare(msg.definition);
  const handlers = {};
  for (const [name, st] of taskStates) handlers[name] = taskHandler(name, st);

  let sm;
  try {
    sm = new StateMachine(definition, { validationOptions: { checkArn: true, checkPaths: true } });
  } catch (e) {
    finish({ type: 'result', status: 'FAILED', error: 'States.Runtime', cause: String(e?.message ?? e) });
    return;
  }
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
    State: stateProxy(),
    Task: taskProxy(),
  };
  if (definition.TimeoutSeconds !== undefined) nextKind = 'deadline';
  execution = sm.run(msg.input, { overrides: { taskResourceLocalHandlers: handlers }, context });
  nextKind = null;

  const events = (async () => {
    for await (const event of execution.eventLogs) send({ type: 'event', event });
  })();
  let result;
  try {
    const output = await execution.result;
    result = { type: 'result', status: 'SUCCEEDED', output: output === undefined ? null : output };
  } catch (e) {
    if (e instanceof ExecutionAbortedError) result = { type: 'result', status: 'ABORTED' };
    else if (e instanceof ExecutionTimeoutError)
      result = { type: 'result', status: 'TIMED_OUT', error: 'States.Timeout', cause: 'The execution timed out.' };
    else result = { type: 'result', status: 'FAILED', ...describe(e) };
  }
  // Every event before the result; the log closes with the execution's end.
  await Promise.race([events, new Promise((r) => realSetTimeout(r, 1000))]);
  finish(result);
}

async function validate(msg) {
  try {
    new StateMachine(msg.definition, { validationOptions: { checkArn: true, checkPaths: true } });
    finish({ type: 'valid' });
  } catch (e) {
    finish({ type: 'invalid', message: String(e?.message ?? e) });
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
      start(msg).catch((e) => finish({ type: 'result', status: 'FAILED', error: 'States.Runtime', cause: String(e?.stack ?? e) }));
      break;
    case 'validate':
      validate(msg);
      break;
    case 'taskResult': {
      const p = pending.get(msg.id);
      if (!p) return; // timed out or aborted meanwhile
      pending.delete(msg.id);
      if (msg.error !== undefined && msg.error !== null) {
        const err = new Error(msg.cause ?? '');
        err.name = msg.error;
        retryNext = true;
        setImmediate(() => {
          retryNext = false;
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
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      const t = callbackTimeouts.get(msg.id);
      if (t) {
        callbackTimeouts.delete(msg.id);
        callbackHandles.delete(t.h);
        t.cb(...t.args);
      } else {
        const err = new Error('States.Timeout');
        err.name = 'States.Timeout';
        p.reject(err);
      }
      break;
    }
    case 'clock':
      // The sandbox clock moved (a test, another execution's Wait): time
      // passes here too, and whatever was due fires.
      if (skipTo(msg.nowMs)) fireUpTo(vnow());
      break;
    case 'abort':
      if (execution) execution.abort();
      else finish({ type: 'result', status: 'ABORTED' });
      break;
    default:
      process.stderr.write(`runner: unknown command ${msg.type}\n`);
  }
});
rl.on('close', () => {
  // The sandbox went away: nothing can finish this execution any more.
  if (!finished) process.exit(1);
});
