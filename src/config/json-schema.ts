// A JSON Schema of gatehouse.yaml for editors (yaml-language-server, VS Code), generated from
// the same zod schema that validates the file, so the two cannot drift.
import { z } from 'zod'
import { gatewayConfigSchema } from './schema.ts'

export function configJsonSchema(): string {
  const schema = z.toJSONSchema(gatewayConfigSchema, { io: 'input', unrepresentable: 'any' })
  return (
    JSON.stringify(
      {
        ...schema,
        $id: 'https://gatehouse.dev/schemas/gatehouse.schema.json',
        title: 'Gatehouse GatewayConfig',
      },
      null,
      2,
    ) + '\n'
  )
}
