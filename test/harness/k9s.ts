// k9s (github.com/derailed/k9s, built from the Go module proxy) in a tmux pane, with its own
// configuration, state and log directories (no update check, no logo, no icons), pointed at
// a kubeconfig and a namespace. Its shell (`s` on a pod) runs the kubectl found first on PATH.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { goClient } from './go-clients.ts'
import type { TmuxPane, TmuxServer } from './tmux.ts'

export async function startK9s(
  tmux: TmuxServer,
  opts: { name: string; kubeconfig: string; namespace: string; dir: string; kubectlDir: string },
): Promise<{ pane: TmuxPane; logFile: string }> {
  const binary = await goClient('k9s')
  const home = join(opts.dir, `k9s-${opts.name}`)
  for (const d of ['config', 'state', 'data', 'cache', 'logs', 'tmp'])
    mkdirSync(join(home, d), { recursive: true })
  writeFileSync(
    join(home, 'config', 'config.yaml'),
    [
      'k9s:',
      '  refreshRate: 2',
      '  skipLatestRevCheck: true',
      '  ui:',
      '    enableMouse: false',
      '    logoless: true',
      '    noIcons: true',
      '  logger:',
      '    tail: 200',
      '    sinceSeconds: -1',
      '',
    ].join('\n'),
  )
  const pane = tmux.start(
    opts.name,
    [
      binary,
      '--kubeconfig',
      opts.kubeconfig,
      '--namespace',
      opts.namespace,
      '--command',
      'pods',
      '--logLevel',
      'debug',
    ],
    {
      env: {
        PATH: `${opts.kubectlDir}:/usr/local/bin:/usr/bin:/bin`,
        K9S_CONFIG_DIR: join(home, 'config'),
        K9S_LOGS_DIR: join(home, 'logs'),
        XDG_STATE_HOME: join(home, 'state'),
        XDG_DATA_HOME: join(home, 'data'),
        XDG_CACHE_HOME: join(home, 'cache'),
        XDG_CONFIG_HOME: join(home, 'config'),
        // klog's files (k9s.<host>.<user>.log.*) and kubectl's temporary files
        TMPDIR: join(home, 'tmp'),
      },
      cols: 200,
      rows: 50,
    },
  )
  return { pane, logFile: join(home, 'logs', 'k9s.log') }
}
