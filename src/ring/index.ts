export { type BellRinger, type BellWaiter, LocalBell, type LocalBellOptions } from "./bell.ts";
export {
  BELL_BYTES,
  BELL_INT32_COUNT,
  BELL_PARKED,
  BELL_SEQ,
  createDoorbell,
  DoorbellRinger,
  DoorbellWaiter,
  type DoorbellWaiterOptions,
  SPIN_US_DEFAULT,
  SPIN_US_MAX,
} from "./doorbell.ts";
export {
  createFrameRing,
  FRAME_LENGTH_BYTES,
  FrameRingReader,
  type FrameRingShared,
  FrameRingWriter,
  RING_CAPACITY_BYTES_MAX,
  RING_CAPACITY_BYTES_MIN,
} from "./frame-ring.ts";
export * from "./ring-errors.ts";
