// Gatehouse's layering, checked by `npm run lint` (dependency-cruiser). In a few lines:
//  - no import cycles, between modules or between folders;
//  - knowledge (kube/, policy/, masking/, schema/, request/, errors/) does no I/O: it imports
//    none of the I/O folders (http/, upstream/, audit/, sessions/, approval/, admin/, cli/,
//    pipeline/, store/) and no node: module that does I/O;
//  - domains (audit/, sessions/, approval/) never import the pipeline: they take request facts
//    (src/request/facts.ts);
//  - the pipeline never imports the listener (http/), the admin API or the CLI;
//  - nothing imports the CLI or the composition root (src/gateway.ts, src/server.ts) but the
//    CLI itself.
// docs/ARCHITECTURE.md describes the same layers.
const KNOWLEDGE = '^src/(kube|policy|masking|schema|request|errors)/'
const IO = '^src/(http|upstream|audit|sessions|approval|admin|cli|pipeline|store)/'

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment:
        'Modules form a DAG: a cycle means two modules are one, or a type is in the wrong place.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'knowledge-does-no-io',
      severity: 'error',
      comment:
        'kube/, policy/, masking/, schema/, request/ and errors/ are pure: they compute, they do not talk.',
      from: { path: KNOWLEDGE },
      to: { path: IO },
    },
    {
      name: 'knowledge-uses-no-io-modules',
      severity: 'error',
      from: { path: KNOWLEDGE },
      to: {
        dependencyTypes: ['core'],
        dependencyTypesNot: ['type-only'],
        path: '^(node:)?(net|tls|http|https|http2|child_process|dgram|dns)$',
      },
    },
    {
      name: 'domains-do-not-know-the-pipeline',
      severity: 'error',
      comment:
        'Domains take request facts (src/request/facts.ts), never the pipeline context or its stages.',
      from: { path: '^src/(audit|sessions|approval|store)/' },
      to: { path: '^src/pipeline/' },
    },
    {
      name: 'pipeline-does-not-know-its-callers',
      severity: 'error',
      from: { path: '^src/pipeline/' },
      to: { path: '^src/(http|admin|cli)/' },
    },
    {
      name: 'only-the-cli-uses-the-root',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(cli/|server\\.ts$|gateway\\.ts$)' },
      to: { path: '^src/(cli/|server\\.ts$|gateway\\.ts$)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
}
