// The `masking:` section of gatehouse.yaml: what is masked, how, and where.
import { z } from 'zod'
import { filePath } from '../schema/fields.ts'
import { DEFAULT_DETECTORS, DETECTOR_NAMES, type DetectorName } from './detectors.ts'

/** A field to mask in objects of one kind (custom resources included): `spec.password`, `spec.users[*].token`, `data.*`. */
const fieldPath = z
  .string()
  .regex(
    /^([A-Za-z0-9_$-]+|\*)(\[\*\])?(\.([A-Za-z0-9_$-]+|\*)(\[\*\])?)*$/,
    'expected a field path such as spec.password, spec.users[*].token or data.*',
  )

export const maskingSchema = z.strictObject({
  /** Detectors run on every string value and text stream (default: all but email). */
  detectors: z
    .array(
      z.enum(DETECTOR_NAMES as [DetectorName, ...DetectorName[]], {
        error: (issue) =>
          `unknown detector ${JSON.stringify(issue.input)}; expected one of ${DETECTOR_NAMES.join(', ')}`,
      }),
    )
    .default([...DEFAULT_DETECTORS]),
  /**
   * Env var names and ConfigMap keys whose values are masked whatever they hold: regular
   * expressions, matched case-insensitively anywhere in the name (default: PASSWORD, SECRET,
   * TOKEN, API_KEY, PRIVATE_KEY, CREDENTIAL...).
   */
  sensitiveNames: z
    .array(
      z.string().refine((p) => {
        try {
          new RegExp(p, 'i')
          return true
        } catch {
          return false
        }
      }, 'expected a regular expression'),
    )
    .min(1)
    .optional(),
  /** Default replacement; a policy's `mask.replacement` overrides it. */
  replacement: z.enum(['placeholder', 'partial', 'hmac']).default('placeholder'),
  /**
   * Key of `hmac` replacements (32 bytes or more). Replicas that must agree on hashes share it;
   * absent: <dataDir>/masking-hmac.key, created on first use.
   */
  hmacKeyFile: filePath.optional(),
  /** Fields masked in objects of these kinds, whatever they hold. */
  fields: z
    .array(
      z.strictObject({
        /** The API group ("" for the core group). */
        apiGroup: z.string(),
        kind: z.string().min(1),
        paths: z.array(fieldPath).min(1),
      }),
    )
    .default([]),
  /** The largest single object (or list page outside its items) decoded to mask it; larger: 502. */
  maxObjectBytes: z
    .number()
    .int()
    .min(64 * 1024)
    .default(64 * 1024 * 1024),
})
