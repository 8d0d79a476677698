/**
 * Test fixture: the v2 bootstrap hook sts-guard injected before v3, kept verbatim (from
 * src/engines/mongodb/bootstrap.ts at commit 6320976) so the replica-set scenarios can show the
 * fork it causes: ordinal 0 with an empty volume initiates a new set whenever ordinals 1 and 2
 * do not answer. Never injected any more.
 */
import type { MemberAddressing } from '../../../src/engines/types.js';

/** First line of every hook script sts-guard writes; how a later review recognises its own hook. */
const BOOTSTRAP_MARKER = '# sts-guard:mongodb-replica-set-bootstrap';
const BOOTSTRAP_VERSION = 'v2';

/**
 * Runs inside the mongo shell (`mongosh`, or the legacy `mongo` of MongoDB ≤ 4.4), so it is
 * plain ES5. Variables RS, STS, ORDINAL, SUFFIX, MONGOSH and ATTEMPTS are prepended by the sh
 * wrapper. mongosh throws on `{ ok: 0 }` answers where the legacy shell returns them, so every
 * command goes through `cmd`, which turns both into a document.
 *
 * Exit 0 means "nothing (more) to do"; a non-zero exit makes kubelet kill and restart mongod,
 * so it is kept for "tried for a while and could not join".
 */
const BOOTSTRAP_JS = `
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
var UNAUTHORIZED = 13, INVALID_CONFIG = 93, NOT_YET_INITIALIZED = 94;
function cannotAuthenticate(where) {
  // Without credentials the hook cannot manage a set with access control; failing would only crash-loop mongod.
  log(where + " requires authentication, which this hook does not have; initiate or join replica set " + RS + " by hand");
  quit(0);
}
function hostOf(i) { return STS + "-" + i + "." + SUFFIX; }
var selfHost = hostOf(ORDINAL);
var local = db.getMongo();

function probe(h) {
  var c = connect(h);
  if (!c) return null;
  var r = cmd(c, { isMaster: 1 });
  if (r.ok !== 1 || !r.setName) return null;
  if (r.setName !== RS) { log(h + " belongs to replica set " + r.setName + ", not " + RS); return null; }
  return { primary: r.ismaster ? h : r.primary };
}
function survey() {
  var found = { member: false, primary: null };
  for (var i = 0; i < ORDINAL + 3; i++) {
    if (i === ORDINAL) continue;
    var p = probe(hostOf(i));
    if (p) { found.member = true; if (p.primary) { found.primary = p.primary; return found; } }
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
for (var attempt = 1; attempt <= ATTEMPTS; attempt++) {
  // Asked on every attempt: the config can arrive meanwhile (mongod finishing loading it at
  // startup, or a heartbeat from a primary that already lists this member).
  var st = cmd(local, { replSetGetStatus: 1 });
  if (st.ok === 1) { log(selfHost + " is a member of replica set " + st.set); quit(0); }
  if (st.code === UNAUTHORIZED) cannotAuthenticate("the local mongod");
  // 94: no config (empty data dir, or still loading it). 93: removed from the set; it must be added back, never initiate.
  if (st.code === NOT_YET_INITIALIZED || st.code === INVALID_CONFIG) {
    var s = survey();
    if (s.primary) { if (join(s.primary)) quit(0); }
    else if (ORDINAL === 0 && st.code === NOT_YET_INITIALIZED && !s.member) {
      // mongod refuses (AlreadyInitialized) when it is still loading a stored config, so this cannot fork a set.
      var r = cmd(local, { replSetInitiate: { _id: RS, members: [{ _id: 0, host: selfHost }] } });
      if (r.ok === 1) { log("initiated replica set " + RS + " with " + selfHost); quit(0); }
      log("replSetInitiate failed: " + r.errmsg);
    } else { log("waiting for a primary of " + RS + " (attempt " + attempt + ")"); }
  } else { log("unexpected answer from the local mongod (attempt " + attempt + "): " + st.errmsg); }
  sleep(2000);
}
log("gave up; the container restarts and the hook tries again");
quit(1);
`;

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}

/**
 * The sh script of the postStart hook. It waits for the local mongod, then runs BOOTSTRAP_JS.
 * Nothing here depends on the replica count, so scaling never changes the pod template.
 */
export function bootstrapScriptV2(a: MemberAddressing): string {
  return [
    `${BOOTSTRAP_MARKER} ${BOOTSTRAP_VERSION}`,
    '# Joins this pod to its replica set (ordinal 0 initiates it); safe to run on every start.',
    'set -u',
    // Send the hook's output to the container's log, where `kubectl logs` shows it.
    'if [ -w /proc/1/fd/1 ]; then exec >>/proc/1/fd/1 2>&1; fi',
    `RS=${shellQuote(a.replicaSetName)}`,
    `SUFFIX=${shellQuote(`${a.serviceName}.${a.namespace}.svc.${a.clusterDomain}:${a.port}`)}`,
    `PORT=${a.port}`,
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
    `JS=${shellQuote(BOOTSTRAP_JS)}`,
    'exec "$MSH" --quiet --port "$PORT" --eval "var RS=\\"$RS\\", STS=\\"$STS\\", ORDINAL=$ORDINAL, SUFFIX=\\"$SUFFIX\\", MONGOSH=$MONGOSH, ATTEMPTS=30; $JS"',
    '',
  ].join('\n');
}
