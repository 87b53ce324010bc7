// The one summary table of `npm run reliability` and its exit code. Pure.
import { renderTable } from './table';

export interface Summary {
  runs: number;
  killPoints: number;
  faultsInjected: number;
  badInputsTried: number;
  badInputsMishandled: number;
  secretsFound: number;
  duplicatedSideEffects: number;
  hostStatesLost: number;
  runsNotAsExpected: number;
}

export function summaryTable(s: Summary): string {
  return renderTable(
    ['runs', 'kill points', 'faults injected', 'bad inputs tried', 'bad inputs mishandled', 'secrets found', 'duplicated side effects', 'host states lost', 'runs not as expected'],
    [[s.runs, s.killPoints, s.faultsInjected, s.badInputsTried, s.badInputsMishandled, s.secretsFound, s.duplicatedSideEffects, s.hostStatesLost, s.runsNotAsExpected]],
  );
}

/** Non-zero when anything was mishandled: the counts after "bad inputs tried" must all be 0. */
export function exitCodeOf(s: Summary): number {
  return s.badInputsMishandled + s.secretsFound + s.duplicatedSideEffects + s.hostStatesLost + s.runsNotAsExpected > 0 ? 1 : 0;
}
