// Field types shared by the configuration and the policy schemas.
import { z } from 'zod'

export const filePath = z.string().min(1, 'expected a file path')
