import { execFileSync } from 'node:child_process';
import { quote, quoteArg } from '../../src/adapters/quote';

/** Run `printf '%s\0' <quoted args>` through a real bash and split what comes back. */
function roundTrip(args: string[]): string[] {
  const out = execFileSync('bash', ['-c', `printf '%s\\0' ${quote(args)}`], { encoding: 'utf8' });
  const parts = out.split('\0');
  parts.pop(); // trailing terminator
  return parts;
}

describe('quoteArg', () => {
  it.each([
    ['plain', 'plain'],
    ['/usr/bin/nvidia-smi', '/usr/bin/nvidia-smi'],
    ['0000:01:00.0', '0000:01:00.0'],
    ['TheBloke/Mistral-7B-Instruct-v0.2-AWQ', 'TheBloke/Mistral-7B-Instruct-v0.2-AWQ'],
    ['root@pam', 'root@pam'],
    ['--format=csv', `'--format=csv'`],
    ['', `''`],
    ['two words', `'two words'`],
    [`it's`, `'it'\\''s'`],
    ['$(reboot)', `'$(reboot)'`],
    ['~', `'~'`],
    ['if', `'if'`],
    ['A=b', `'A=b'`],
  ])('%j -> %s', (input, expected) => {
    expect(quoteArg(input)).toBe(expected);
  });

  it('refuses NUL bytes instead of truncating', () => {
    expect(() => quoteArg('a\0b')).toThrow(/NUL/);
  });

  it('refuses an empty argv', () => {
    expect(() => quote([])).toThrow(/empty argv/);
  });
});

describe('quote round trip through bash -c', () => {
  const hostile: string[] = [
    '',
    ' ',
    'a b',
    "'",
    "''",
    '"',
    '\\',
    '\\\\n',
    '$HOME',
    '${IFS}',
    '`id`',
    '$(touch /tmp/pwned-by-quote-test)',
    'a;b',
    'a && b',
    'a || b',
    'a | b',
    'a > /tmp/x',
    '< /etc/passwd',
    '&',
    '#comment',
    '*',
    '?',
    '[a-z]',
    '{a,b}',
    '~root',
    '!',
    '!!',
    'line1\nline2',
    '\n',
    '\r\n',
    '\t',
    "it's \"quoted\" `twice`",
    'ünïcødé ✓ 模型 🚀',
    'A=b',
    'if',
    '--flag=value with spaces',
    '-e',
    "'; rm -rf / #",
    'x'.repeat(10000),
  ];

  it.each(hostile.map((s) => [JSON.stringify(s).slice(0, 60), s]))('%s arrives as one literal argument', (_label, s) => {
    expect(roundTrip(['x', s, 'y'])).toEqual(['x', s, 'y']);
  });

  it('keeps a whole hostile argv intact, argument by argument', () => {
    expect(roundTrip(hostile)).toEqual(hostile);
  });

  it('never executes what it quotes', () => {
    execFileSync('rm', ['-f', '/tmp/pwned-by-quote-test']);
    roundTrip(['$(touch /tmp/pwned-by-quote-test)', '`touch /tmp/pwned-by-quote-test`', ';touch /tmp/pwned-by-quote-test']);
    expect(() => execFileSync('test', ['-e', '/tmp/pwned-by-quote-test'])).toThrow();
  });

  it('runs argv[0] as a command even when it looks like an assignment or keyword', () => {
    const out = execFileSync('bash', ['-c', `${quote(['if'])} 2>&1; echo "rc=$?"`], { encoding: 'utf8' });
    expect(out).toMatch(/command not found[\s\S]*rc=127/);
  });
});
