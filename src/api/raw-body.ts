/** A route result sent as-is with its own media type (a CRL), instead of serialized as JSON. */
export class RawBody {
  constructor(
    readonly contentType: string,
    readonly body: Buffer | string,
  ) {}
}
