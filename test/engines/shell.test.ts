import fc from 'fast-check';
import t from 'tap';
import { mongodLaunch } from '../../src/engines/mongodb/command.js';
import { parseScript, shellScriptOf } from '../../src/engines/shell.js';
import { propertyHolds } from '../support/property.js';

t.test('sh -c, bash -ec and sh -e -c hand the next argument to the shell as its script', async (t) => {
  t.same(shellScriptOf(['/bin/sh', '-c', 'exec mongod']), { index: 2, script: 'exec mongod' });
  t.same(shellScriptOf(['bash', '-ec', 'x', 'zero']), { index: 2, script: 'x' });
  t.same(shellScriptOf(['/bin/bash', '-e', '-c', 'x']), { index: 3, script: 'x' });
  t.equal(shellScriptOf(['/bin/sh', '/scripts/start.sh']), undefined, 'a script file is not -c');
  t.equal(shellScriptOf(['python3', '-c', 'x']), undefined, 'not a shell');
});

t.test(
  'words as the shell splits them: quotes, separators, redirections, comments, assignments',
  async (t) => {
    const parsed = parseScript(
      `set -e # strict\nexport A=1 B="two words"; ulimit -n 64000 &&\\\n exec mongod --replSet 'rs 0' --bind_ip_all >/proc/1/fd/1 2>&1`,
    );
    if (!parsed.ok) throw new Error(parsed.reason);
    t.same(
      parsed.commands.map((c) => c.words.map((w) => w.text)),
      [
        ['set', '-e'],
        ['export', 'A=1', 'B=two words'],
        ['ulimit', '-n', '64000'],
        ['exec', 'mongod', '--replSet', 'rs 0', '--bind_ip_all'],
      ],
    );
    t.same(
      [...parsed.assignments],
      [
        ['A', '1'],
        ['B', 'two words'],
      ],
    );
  },
);

t.test('what cannot be read with confidence is a reason, not a guess', async (t) => {
  t.match(parseScript('cat <<EOF\nx\nEOF'), { ok: false, reason: 'it uses a here-document' });
  t.match(parseScript('(exec mongod)'), { ok: false, reason: 'it uses a subshell or function' });
  t.match(parseScript("echo 'open"), { ok: false, reason: 'a single quote is not closed' });
  t.match(parseScript('case $x in a) ;; esac'), { ok: false });
  t.match(parseScript('echo $(date'), { ok: false, reason: 'a $( is not closed' });
});

t.test("the Community operator's script: mongod -f from the config file its agent writes", async (t) => {
  const launch = mongodLaunch({
    name: 'mongod',
    command: [
      '/bin/sh',
      '-c',
      '\nif [ -e "/hooks/version-upgrade" ]; then\n    /hooks/version-upgrade\nfi\n\nwhile ! [ -f /data/automation-mongod.conf -a -f /var/lib/mongodb-mms-automation/authentication/keyfile ]; do sleep 3 ; done ; sleep 2 ;\n\nexec mongod -f /data/automation-mongod.conf;\n\n',
    ],
    args: [''],
  });
  t.match(launch, { form: 'shell', argv: ['-f', '/data/automation-mongod.conf'], unresolved: undefined });
});

t.test('any script and any command line: the reader answers, never throws', async (t) => {
  const shellish = fc.stringMatching(/^[a-z $"'`\\;&|<>()#=\n{}@*-]{0,60}$/);
  await propertyHolds(
    t,
    'any script: parsed, or refused with a reason',
    fc.property(shellish, (script) => {
      const parsed = parseScript(script);
      if (!parsed.ok && typeof parsed.reason !== 'string') throw new Error('no reason');
    }),
    2000,
  );
  await propertyHolds(
    t,
    'any command line: read as one of the launch forms',
    fc.property(
      fc.array(fc.oneof(shellish, fc.constantFrom('sh', '-c', 'mongod', '--replSet'))),
      fc.array(shellish),
      (command, args) => {
        const launch = mongodLaunch({ name: 'c', command, args });
        if (!['flags', 'shell', 'shell-other', 'unreadable'].includes(launch.form))
          throw new Error(launch.form);
      },
    ),
    2000,
  );
});
