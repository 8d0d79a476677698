import type { BootstrapHookInfo, InitiationWindow, MemberAddressing } from '../types.js';

/** First line of every hook script sts-guard writes; how a later review recognises its own hook. */
export const BOOTSTRAP_MARKER = '# sts-guard:mongodb-replica-set-bootstrap';
export const BOOTSTRAP_VERSION = 'v3';

/** How many rounds the hook surveys and waits, and the wall-clock bound on all of them. */
const ROUNDS = 30;
const ROUND_PAUSE_SECONDS = 2;
const ROUNDS_BUDGET_SECONDS = 300;
/** The JS exit status meaning "no evidence yet: look again next round". */
const RETRY = 3;

/**
 * One round of the bootstrap, run inside the mongo shell (`mongosh`, or the legacy `mongo` of
 * MongoDB ≤ 4.4), so it is plain ES5. The sh wrapper prepends RS, STS, ORDINAL, SUFFIX, MONGOSH,
 * ROUND, INITIATE_UNTIL (epoch seconds, 0: no window), ADDRS (every "ip:port" the headless Service
 * resolves to, or null when the image cannot resolve it) and SELF (this pod's "ip:port", or "").
 * mongosh throws on `{ ok: 0 }` answers where the legacy shell returns them, so every command goes
 * through `cmd`, which turns both into a document.
 *
 * The rule it keeps: initiate only with positive evidence that no member anywhere holds this
 * set's data. That is ordinal 0, an empty data directory, the initiation window sts-guard stamped
 * when it saw the StatefulSet created with no volume claims (or reopened on purpose), and every
 * address DNS lists for the Service (publishNotReadyAddresses: not-ready pods too) answering
 * without a config of this set. Anything else: join through a primary, or wait and say why.
 * quit(0): done; quit(3): look again next round.
 */
export const BOOTSTRAP_JS = `
function log(m) { print("sts-guard bootstrap: " + m); }
function cmd(conn, c) {
  try { return conn.getDB("admin").runCommand(c); }
  catch (e) { return { ok: 0, code: e.code, errmsg: String(e) }; }
}
function connect(h) {
  try {
    return new Mongo(MONGOSH ? "mongodb://" + h + "/?directConnection=true&serverSelectionTimeoutMS=3000&connectTimeoutMS=3000" : h);
  } catch (e) { return null; }
}
var DONE = 0, RETRY = ${RETRY}, UNAUTHORIZED = 13, INVALID_CONFIG = 93, NOT_YET_INITIALIZED = 94;
function cannotAuthenticate(where) {
  // Without credentials the hook cannot manage a set with access control; failing would only crash-loop mongod.
  log(where + " requires authentication, which this hook does not have; initiate or join replica set " + RS + " by hand");
  quit(DONE);
}
function hostOf(i) { return STS + "-" + i + "." + SUFFIX; }
var selfHost = hostOf(ORDINAL);
var local = db.getMongo();

// What the mongod at addr says about this set: a holder of its data (and the primary it names),
// empty, of another set, or silent (not answering yet: it may hold data).
function ask(addr) {
  var c = connect(addr);
  if (!c) return { silent: true };
  var r = cmd(c, { isMaster: 1 });
  if (r.ok !== 1) return { silent: true };
  if (r.setName) {
    if (r.setName !== RS) { log(addr + " belongs to replica set " + r.setName + ", not " + RS); return { other: true }; }
    return { holder: r.me || addr, primary: r.ismaster ? r.me : r.primary };
  }
  var s = cmd(c, { replSetGetStatus: 1 });
  if (s.ok === 1 || s.code === INVALID_CONFIG) return { holder: addr };
  if (s.code === NOT_YET_INITIALIZED) return { empty: true };
  return { silent: true };
}
function survey() {
  var found = { primary: null, holders: [], silent: [] };
  var addrs = [];
  if (ADDRS === null) {
    // No resolver in the image: ask the ordinals next to this one (enough to join, never to initiate).
    for (var i = 0; i < ORDINAL + 3; i++) if (i !== ORDINAL) addrs.push(hostOf(i));
  } else {
    for (var j = 0; j < ADDRS.length; j++) if (ADDRS[j] !== SELF) addrs.push(ADDRS[j]);
  }
  for (var k = 0; k < addrs.length; k++) {
    var a = ask(addrs[k]);
    if (a.silent) found.silent.push(addrs[k]);
    if (a.holder) found.holders.push(a.holder);
    if (a.primary) { found.primary = a.primary; return found; }
  }
  return found;
}
function join(primary) {
  var pc = connect(primary);
  if (!pc) return false;
  var res = cmd(pc, { replSetGetConfig: 1 });
  if (res.code === UNAUTHORIZED) cannotAuthenticate(primary);
  if (res.ok !== 1) { log("cannot read the configuration from " + primary + ": " + res.errmsg); return false; }
  var cfg = res.config, maxId = -1, voters = 0;
  for (var i = 0; i < cfg.members.length; i++) {
    var m = cfg.members[i];
    if (m.host === selfHost) { log(selfHost + " is in the configuration already; it will sync from " + primary); return true; }
    if (m._id > maxId) maxId = m._id;
    if (m.votes !== 0) voters++;
  }
  var member = { _id: maxId + 1, host: selfHost };
  // A replica set has at most 7 voting members; further members join as non-voting.
  if (voters >= 7) { member.votes = 0; member.priority = 0; }
  cfg.members.push(member);
  cfg.version += 1;
  var r = cmd(pc, { replSetReconfig: cfg });
  if (r.code === UNAUTHORIZED) cannotAuthenticate(primary);
  if (r.ok !== 1) { log("replSetReconfig on " + primary + " failed: " + r.errmsg); return false; }
  log("added " + selfHost + " to replica set " + RS + " through " + primary);
  return true;
}
// Why this pod must not initiate the set now, or "" when the evidence is complete.
function refusal(s) {
  if (ORDINAL !== 0) return "only ordinal 0 initiates; waiting for a primary to join";
  if (s.holders.length > 0) return s.holders.join(", ") + " hold data of " + RS + " but name no primary yet; waiting for them to elect one";
  var now = Math.floor(new Date().getTime() / 1000);
  if (INITIATE_UNTIL === 0 || now > INITIATE_UNTIL) {
    return "the initiation window is closed" + (INITIATE_UNTIL === 0 ? "" : " (it closed at " + new Date(INITIATE_UNTIL * 1000).toISOString() + ")") +
      ". No member that answers holds data of " + RS + ", but a member that is down may: a new set would fork it. " +
      "If every volume of " + STS + " is really gone, reopen initiation once: kubectl annotate statefulset " + STS +
      " sts-guard.io/reset-replica-set=<new value> (docs/operations.md, \\"Resetting a replica set on purpose\\")";
  }
  if (ADDRS === null) return "this image cannot resolve the headless Service (no getent), so the members cannot be counted";
  if (SELF === "" || ADDRS.indexOf(SELF) < 0) return "DNS does not list this pod under its headless Service yet";
  if (s.silent.length > 0) return s.silent.join(", ") + " resolve but do not answer yet";
  return "";
}

var st = cmd(local, { replSetGetStatus: 1 });
if (st.ok === 1) { log(selfHost + " is a member of replica set " + st.set); quit(DONE); }
if (st.code === UNAUTHORIZED) cannotAuthenticate("the local mongod");
// 94: no config (empty data dir, or still loading it). 93: removed from the set; it must be added back, never initiate.
if (st.code !== NOT_YET_INITIALIZED && st.code !== INVALID_CONFIG) {
  log("unexpected answer from the local mongod (round " + ROUND + "): " + st.errmsg);
  quit(RETRY);
}
var s = survey();
if (s.primary) { if (join(s.primary)) quit(DONE); quit(RETRY); }
if (st.code === INVALID_CONFIG) { log(selfHost + " was removed from " + RS + "; waiting for a primary to add it back (round " + ROUND + ")"); quit(RETRY); }
var why = refusal(s);
if (why !== "") { log("not initiating " + RS + " (round " + ROUND + "): " + why); quit(RETRY); }
// mongod refuses (AlreadyInitialized) when it is still loading a stored config, so this cannot fork a set.
var r = cmd(local, { replSetInitiate: { _id: RS, members: [{ _id: 0, host: selfHost }] } });
if (r.ok === 1) { log("initiated replica set " + RS + " with " + selfHost); quit(DONE); }
log("replSetInitiate failed: " + r.errmsg);
quit(RETRY);
`;

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}

/** The JS as one sh word, built once: it is the bulk of every hook. */
const QUOTED_JS = shellQuote(BOOTSTRAP_JS);

/** A reset token is free text from an annotation; the script keeps it on one plain line. */
const safeToken = (token: string) => token.replace(/[^A-Za-z0-9._:@+=-]/g, '_').slice(0, 63);

/**
 * The sh script of the postStart hook. It waits for the local mongod, then runs BOOTSTRAP_JS once
 * per round, resolving the headless Service afresh each time (DNS may lag the pod), until it is a
 * member or the rounds run out. It always ends: a postStart that never returns wedges the pod,
 * and it exits 0 when it only waited, so that OrderedReady starts the peers whose data is the
 * evidence it waits for. Nothing here depends on the replica count, so scaling never changes the
 * pod template.
 */
export function bootstrapScript(a: MemberAddressing, window: InitiationWindow = CLOSED_WINDOW): string {
  const service = `${a.serviceName}.${a.namespace}.svc.${a.clusterDomain}`;
  return [
    `${BOOTSTRAP_MARKER} ${BOOTSTRAP_VERSION}`,
    '# Joins this pod to its replica set. Ordinal 0 initiates it only inside the initiation window',
    '# and only when no member that DNS lists holds its data; otherwise it waits and logs why.',
    'set -u',
    // Send the hook's output to the container's log, where `kubectl logs` shows it.
    'if [ -w /proc/1/fd/1 ]; then exec >>/proc/1/fd/1 2>&1; fi',
    `RS=${shellQuote(a.replicaSetName)}`,
    `SERVICE=${shellQuote(service)}`,
    `PORT=${a.port}`,
    // Stamped by sts-guard (epoch seconds; 0: closed). Changing it rolls the pods, so it changes
    // only at CREATE and on a deliberate reset (sts-guard.io/reset-replica-set).
    `INITIATE_UNTIL=${Math.max(0, Math.floor(window.until))}`,
    `RESET_TOKEN=${shellQuote(safeToken(window.resetToken))}`,
    // With setHostnameAsFQDN, hostname prints the FQDN; the pod name is its first label.
    'POD="$(hostname)"',
    'POD="${POD%%.*}"',
    'ORDINAL="${POD##*-}"',
    'STS="${POD%-*}"',
    'case "$ORDINAL" in "" | *[!0-9]*) echo "sts-guard bootstrap: cannot read a StatefulSet ordinal from hostname $POD"; exit 1 ;; esac',
    'if command -v mongosh >/dev/null 2>&1; then MSH=mongosh; MONGOSH=true; else MSH=mongo; MONGOSH=false; fi',
    'i=0',
    'until "$MSH" --quiet --port "$PORT" --eval "db.adminCommand({ ping: 1 }).ok" >/dev/null 2>&1; do',
    '  i=$((i + 1))',
    '  if [ "$i" -ge 120 ]; then echo "sts-guard bootstrap: mongod did not answer on port $PORT"; exit 1; fi',
    '  sleep 1',
    'done',
    `JS=${QUOTED_JS}`,
    // Every address of a name as a JS array of "ip:port" (IPv6 in brackets).
    'addresses() {',
    '  getent ahosts "$1" 2>/dev/null | awk -v port="$PORT" \'!seen[$1]++ { printf "%s\\"%s%s%s:%s\\"", (n++ ? "," : ""), (index($1, ":") ? "[" : ""), $1, (index($1, ":") ? "]" : ""), port }\'',
    '}',
    'round=1',
    `deadline=$(($(date +%s) + ${ROUNDS_BUDGET_SECONDS}))`,
    `while [ "$round" -le ${ROUNDS} ]; do`,
    '  if command -v getent >/dev/null 2>&1; then',
    '    ADDRS="[$(addresses "$SERVICE")]"',
    '    SELF="$(addresses "$POD.$SERVICE" | cut -d, -f1 | tr -d \'"\')"',
    '  else',
    '    ADDRS=null',
    '    SELF=""',
    '  fi',
    '  "$MSH" --quiet --port "$PORT" --eval "var RS=\\"$RS\\", STS=\\"$STS\\", ORDINAL=$ORDINAL, SUFFIX=\\"$SERVICE:$PORT\\", MONGOSH=$MONGOSH, ROUND=$round, INITIATE_UNTIL=$INITIATE_UNTIL, ADDRS=$ADDRS, SELF=\\"$SELF\\"; $JS"',
    `  status=$?`,
    '  if [ "$status" -eq 0 ]; then exit 0; fi',
    '  if [ "$(date +%s)" -ge "$deadline" ]; then break; fi',
    `  sleep ${ROUND_PAUSE_SECONDS}`,
    '  round=$((round + 1))',
    'done',
    // Exit 0: a failing postStart restarts mongod and, under OrderedReady, holds back the peers.
    'echo "sts-guard bootstrap: stopped waiting; $POD stays outside replica set $RS for now (reasons above, reset token $RESET_TOKEN). mongod joins by itself when a primary lists it; otherwise the next container start tries again."',
    'exit 0',
    '',
  ].join('\n');
}

/** No initiation window: the hook only ever joins. */
export const CLOSED_WINDOW: InitiationWindow = { until: 0, resetToken: '' };

const UNTIL_LINE = /^INITIATE_UNTIL=(\d+)$/m;
const RESET_LINE = /^RESET_TOKEN='([^']*)'$/m;

/** What a postStart handler sts-guard wrote says about itself; undefined for anyone else's. */
export function bootstrapHookInfo(script: string | undefined): BootstrapHookInfo | undefined {
  if (!script?.startsWith(BOOTSTRAP_MARKER)) return undefined;
  const version = script.slice(BOOTSTRAP_MARKER.length).trim().split(/\s/)[0] ?? '';
  return {
    version,
    current: version === BOOTSTRAP_VERSION,
    window: {
      until: Number(UNTIL_LINE.exec(script)?.[1] ?? 0),
      resetToken: RESET_LINE.exec(script)?.[1] ?? '',
    },
  };
}

export { safeToken as bootstrapResetToken };
