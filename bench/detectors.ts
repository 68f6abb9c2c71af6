// The detectors on adversarial text: long runs of what a pattern accepts, broken at the end
// (what makes a backtracking engine try many ways to match). Linear work costs about 10x for
// 10x the input; the unit tests prove the patterns linear by analysis (recheck), this measures
// the whole detector set, stream-masker partials included.
import { detectorSet } from '../src/masking/detectors.ts'
import { DETECTOR_NAMES } from '../src/masking/detector.ts'

const ADVERSARIAL: Record<string, (n: number) => string> = {
  digits: (n) => '4'.repeat(n) + 'x',
  'digits and spaces': (n) => '4 '.repeat(n / 2) + '-',
  dashes: (n) => '123-45-'.repeat(n / 7),
  iban: (n) => 'DE89 ' + 'AAAA '.repeat(n / 5),
  email: (n) => 'a'.repeat(n / 2) + '@' + 'b.'.repeat(n / 4),
  'email runs': (n) => '_' + '%_'.repeat(n / 2),
  jwt: (n) => 'eyJ' + 'a'.repeat(n / 2) + '.eyJ' + 'b'.repeat(n / 2),
  'jwt starts': (n) => 'eyJ-'.repeat(n / 4),
  'pem begins': (n) => '-----BEGIN PRIVATE KEY-----\n'.repeat(n / 28),
  assignments: (n) => 'password='.repeat(n / 9),
  slack: (n) => 'xoxb-'.repeat(n / 5),
}

export function detectorLinearity(): string[] {
  const set = detectorSet(DETECTOR_NAMES)
  const time = (s: string): number => {
    const least: number[] = []
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now()
      set.find(s)
      set.partials(s, 0)
      least.push(performance.now() - t0)
    }
    return Math.min(...least)
  }
  const lines = [
    '| adversarial input | 20 KB | 200 KB | ratio (linear ≈ 10) |',
    '|---|---|---|---|',
  ]
  for (const [name, make] of Object.entries(ADVERSARIAL)) {
    const small = time(make(20_000))
    const large = time(make(200_000))
    lines.push(
      `| ${name} | ${small.toFixed(2)} ms | ${large.toFixed(2)} ms | ${(large / Math.max(small, 0.01)).toFixed(1)} |`,
    )
  }
  return lines
}
