// SPDY/3.1 as Kubernetes uses it for exec, attach and port-forward. No maintained Node
// library exists; this is ours: the frame codec and header-block compression (the endpoint the
// test kubelet speaks is in test/harness/spdy/session.ts; Gatehouse only reads sessions).
export { SPDY3_HEADER_DICTIONARY } from './dictionary.ts'
export {
  ControlType,
  encodeFrame,
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  FrameParser,
  MAX_FRAME_PAYLOAD,
  RstStatus,
  SpdyProtocolError,
  type SpdyFrame,
} from './frames.ts'
export {
  decodeHeaderBlock,
  encodeHeaderBlock,
  HeaderCompressor,
  HeaderDecompressor,
  type SpdyHeaders,
} from './header-block.ts'
