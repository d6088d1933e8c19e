/** Turning what callers name devices by into what the store looks them up by. */
import type { DeviceKey } from '../bus/bus.js';
import { isNumId, parseDevice, type DeviceName } from '../domain/names.js';
import type { DeviceRef } from '../store/store.js';

/** How the store is asked for a device that a caller named by id or numeric id (DeviceName.device). */
export const deviceRefOf = (device: string): DeviceRef => (isNumId(device) ? { numId: device } : { id: device });

/** A bus key names a device by id; anything else cannot be one of ours. */
export function deviceNameOfKey(key: DeviceKey): DeviceName | undefined {
  try {
    const name = parseDevice(key, 'device');
    return isNumId(name.device) ? undefined : name;
  } catch {
    return undefined;
  }
}
