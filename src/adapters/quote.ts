/**
 * POSIX shell quoting of an argv array. SSH only carries a command *string*, which the remote login shell
 * parses again; quoting every argument here is what keeps a model id or hostname with `;`, `$()` or a newline
 * one literal argument instead of a second command.
 */

// Characters that are never special to sh/bash in any position. `=` is left out on purpose: as the first word
// `A=b` would be a variable assignment instead of a command; `~` is left out because of tilde expansion.
const SAFE_WORD = /^[A-Za-z0-9_@%+:,./-]+$/;

// Reserved words are only special unquoted in command position, but quoting them everywhere is harmless.
const RESERVED = new Set([
  '!', '{', '}', '[[', ']]', 'case', 'coproc', 'do', 'done', 'elif', 'else', 'esac', 'fi', 'for', 'function',
  'if', 'in', 'select', 'then', 'time', 'until', 'while',
]);

export function quoteArg(arg: string): string {
  if (typeof arg !== 'string') throw new TypeError(`quote: argument is not a string: ${String(arg)}`);
  // A NUL byte cannot be part of a process argument; refusing beats silently truncating.
  if (arg.includes('\0')) throw new Error('quote: argument contains a NUL byte');
  if (arg.length > 0 && SAFE_WORD.test(arg) && !RESERVED.has(arg)) return arg;
  // Inside single quotes nothing is special except the closing quote: end the quote, add an escaped quote,
  // reopen. Newlines, unicode, `$`, backslashes and backticks all survive literally.
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function quote(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('quote: empty argv');
  return argv.map(quoteArg).join(' ');
}
