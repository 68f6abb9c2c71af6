export { errorCodes, type GatewayErrorCode } from './codes.ts'
export { GatewayError, isGatewayError } from './gateway-error.ts'
export { rawStatusResponse, toKubeStatus, type KubeStatus } from './status.ts'
