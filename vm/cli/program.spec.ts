import { Help, type Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram, commandWord, DEFERRED } from './program.ts';

const argv = (...words: string[]) => ['node', 'spritely', ...words];

/** How `spritely --help` lists each visible command: usage term and summary. */
function listing(program: Command): Map<string, { term: string; description: string }> {
  const help = program.createHelp();
  return new Map(help.visibleCommands(program).map((c) => [c.name(), { term: help.subcommandTerm(c), description: help.subcommandDescription(c) }]));
}

describe('commandWord', () => {
  it('is the first word that is not an option; `help X` is X', () => {
    expect(commandWord(argv('list'))).toBe('list');
    expect(commandWord(argv('--json', 'cp', 'a', 'b'))).toBe('cp');
    expect(commandWord(argv('exec', 'dev', '--', 'ls'))).toBe('exec');
    expect(commandWord(argv('help', 'ssh-config'))).toBe('ssh-config');
    expect(commandWord(argv('help'))).toBeUndefined();
    expect(commandWord(argv('--version'))).toBeUndefined();
    expect(commandWord(argv())).toBeUndefined();
  });
});

describe('deferred commands', () => {
  it('are stubs until invoked, listed exactly as their real declarations list them', async () => {
    const stubs = listing(await buildProgram(undefined));
    for (const d of DEFERRED) {
      const real = listing(await buildProgram(d.commands[0]));
      for (const l of d.listed) {
        expect(stubs.get(l.name), `stub of ${l.name}`).toEqual(real.get(l.name));
        expect(real.get(l.name)?.description, `${l.name} is really declared`).toBeTruthy();
      }
      // Every visible command the module declares has a stub (hidden ones need none).
      const declared = [...real.keys()].filter((n) => d.commands.includes(n));
      expect(declared.sort()).toEqual(d.listed.map((l) => l.name).sort());
    }
  });

  it('are registered for real when one of their commands is invoked (hidden ones too)', async () => {
    for (const d of DEFERRED) {
      for (const name of d.commands) {
        const program = await buildProgram(name);
        const cmd = program.commands.find((c) => c.name() === name);
        expect(cmd, name).toBeTruthy();
        // A real declaration has its arguments or options; a stub has neither.
        expect(cmd!.registeredArguments.length + cmd!.options.length, name).toBeGreaterThan(0);
      }
    }
  });

  it('are the only stubs, and the help lists every command once', async () => {
    const program = await buildProgram(undefined);
    const names = program.commands.map((c) => c.name());
    expect(new Set(names).size).toBe(names.length);
    const stubbed = DEFERRED.flatMap((d) => d.listed.map((l) => l.name));
    for (const c of program.commands) {
      if (stubbed.includes(c.name())) expect(c.registeredArguments.length + c.options.length).toBe(0);
    }
    // A non-stub term comes from commander itself.
    const list = program.commands.find((c) => c.name() === 'list')!;
    expect(program.createHelp().subcommandTerm(list)).toBe(new Help().subcommandTerm(list));
  });
});
