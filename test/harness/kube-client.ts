// A tiny admin REST client for harness bootstrap (not the product's upstream client).
import { Agent, request } from 'undici'

export interface KubeClientOptions {
  server: string
  ca: string | Buffer
  token: string
}

export class KubeRequestError extends Error {
  readonly statusCode: number
  readonly body: string

  constructor(statusCode: number, body: string, what: string) {
    super(`${what} failed with HTTP ${statusCode}: ${body.slice(0, 500)}`)
    this.statusCode = statusCode
    this.body = body
  }
}

export class KubeClient {
  readonly #agent: Agent
  readonly #server: string
  readonly #token: string

  constructor(opts: KubeClientOptions) {
    this.#server = opts.server
    this.#token = opts.token
    this.#agent = new Agent({ connect: { ca: opts.ca }, allowH2: false })
  }

  async raw(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<{ statusCode: number; body: string }> {
    const res = await request(this.#server + path, {
      method: method as 'GET',
      dispatcher: this.#agent,
      headers: {
        authorization: `Bearer ${this.#token}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': contentType }),
      },
      body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body),
    })
    return { statusCode: res.statusCode, body: await res.body.text() }
  }

  async json<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<T> {
    const res = await this.raw(method, path, body, contentType)
    if (res.statusCode >= 300)
      throw new KubeRequestError(res.statusCode, res.body, `${method} ${path}`)
    return JSON.parse(res.body) as T
  }

  /** Create, tolerating AlreadyExists (harness bootstrap is idempotent). */
  async ensure(path: string, body: unknown): Promise<void> {
    const res = await this.raw('POST', path, body)
    if (res.statusCode >= 300 && res.statusCode !== 409) {
      throw new KubeRequestError(res.statusCode, res.body, `POST ${path}`)
    }
  }

  /** A token for a ServiceAccount (TokenRequest), for the given audiences or the API server's. */
  async serviceAccountToken(
    namespace: string,
    name: string,
    spec: { expirationSeconds: number; audiences?: string[] },
  ): Promise<string> {
    const { status } = await this.json<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec },
    )
    return status.token
  }

  async close(): Promise<void> {
    await this.#agent.close()
  }
}
