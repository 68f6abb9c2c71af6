// nginx `proxy_pass` in front of the same API server: the bar Gatehouse is measured against.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startProcess, type ManagedProcess } from '../test/harness/processes.ts'
import { freePort } from '../test/harness/ports.ts'

export interface RunningNginx {
  url: string
  proc: ManagedProcess
}

/**
 * TLS on both legs like Gatehouse, HTTP/1.1 upstream keep-alive, no buffering (watches), and the
 * admin token injected, since nginx cannot authenticate callers itself.
 */
export async function startNginx(opts: {
  dir: string
  upstream: string
  upstreamCaFile: string
  token: string
  certFile: string
  keyFile: string
}): Promise<RunningNginx> {
  mkdirSync(opts.dir, { recursive: true })
  const port = await freePort()
  const upstream = new URL(opts.upstream)
  const conf = `
worker_processes 2;
daemon off;
pid ${join(opts.dir, 'nginx.pid')};
error_log ${join(opts.dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${opts.dir}/body;
  proxy_temp_path ${opts.dir}/proxy;
  fastcgi_temp_path ${opts.dir}/fastcgi;
  uwsgi_temp_path ${opts.dir}/uwsgi;
  scgi_temp_path ${opts.dir}/scgi;
  upstream apiserver { server ${upstream.host}; keepalive 64; }
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${opts.certFile};
    ssl_certificate_key ${opts.keyFile};
    client_max_body_size 16m;
    location / {
      proxy_pass https://apiserver;
      proxy_http_version 1.1;
      proxy_ssl_trusted_certificate ${opts.upstreamCaFile};
      proxy_ssl_verify on;
      proxy_ssl_name localhost; # nginx checks DNS names only, not IP SANs
      proxy_ssl_session_reuse on;
      proxy_set_header Authorization "Bearer ${opts.token}";
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_read_timeout 3600s;
    }
  }
}
`
  const confFile = join(opts.dir, 'nginx.conf')
  writeFileSync(confFile, conf)
  const proc = startProcess(
    'nginx',
    '/usr/sbin/nginx',
    ['-c', confFile, '-e', join(opts.dir, 'error.log')],
    {
      logFile: join(opts.dir, 'nginx.out'),
    },
  )
  const url = `https://127.0.0.1:${port}`
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      const { connect } = await import('node:net')
      await new Promise<void>((resolve, reject) => {
        const s = connect(port, '127.0.0.1', () => {
          s.destroy()
          resolve()
        })
        s.on('error', reject)
      })
      break
    } catch {
      if (Date.now() > deadline || proc.child.exitCode !== null)
        throw new Error(`nginx did not start; see ${join(opts.dir, 'error.log')}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  return { url, proc }
}
