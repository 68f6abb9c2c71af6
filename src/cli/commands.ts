// Every command of the gatehouse CLI, in the order `gatehouse --help` lists them.
import { approvalCommands } from './approvals.ts'
import { auditCommands } from './audit.ts'
import type { Command } from './command.ts'
import { policyTestCommand } from './policy-command.ts'
import { sessionCommands } from './sessions.ts'
import { setupCommands } from './setup.ts'

export const COMMANDS: readonly Command[] = [
  ...setupCommands,
  policyTestCommand,
  ...auditCommands,
  ...sessionCommands,
  ...approvalCommands,
]
