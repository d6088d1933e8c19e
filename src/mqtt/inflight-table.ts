/**
 * Messages in flight by packet id (1–65535), for a session that sends thousands a second. A Map
 * with a set and a delete per message keeps replacing its backing table, and those tables get
 * promoted to the old generation together with the messages they held: at 100k messages a second
 * that made a full garbage collection (and a latency spike) every second. Here ids index fixed
 * pages of slots, allocated when first used and dropped when emptied (except the page ids are
 * being taken from, so a slow trickle of messages allocates nothing); packet ids are allocated in
 * sequence, so one or two pages are in use at a time.
 */

const PAGE_BITS = 10;
const PAGE_SIZE = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_SIZE - 1;
const PAGES = (0xffff >> PAGE_BITS) + 1;

interface Page<T> {
  readonly slots: Array<T | undefined>;
  used: number;
}

export class InflightTable<T extends { readonly seq: number }> {
  readonly #pages: Array<Page<T> | undefined> = new Array<Page<T> | undefined>(PAGES).fill(undefined);
  #size = 0;
  /** The page of the last id set: kept even when empty, since the next ids come from it. */
  #current = 0;

  get size(): number {
    return this.#size;
  }

  /** Pages of slots currently allocated. */
  get pagesAllocated(): number {
    return this.#pages.filter((page) => page !== undefined).length;
  }

  get(id: number): T | undefined {
    return this.#pages[id >> PAGE_BITS]?.slots[id & PAGE_MASK];
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  set(id: number, value: T): void {
    const index = id >> PAGE_BITS;
    if (index !== this.#current) {
      // Ids moved on to another page: the one left behind goes as soon as it is empty.
      if (this.#pages[this.#current]?.used === 0) this.#pages[this.#current] = undefined;
      this.#current = index;
    }
    let page = this.#pages[index];
    if (page === undefined) {
      page = { slots: new Array<T | undefined>(PAGE_SIZE).fill(undefined), used: 0 };
      this.#pages[index] = page;
    }
    const slot = id & PAGE_MASK;
    if (page.slots[slot] === undefined) {
      page.used++;
      this.#size++;
    }
    page.slots[slot] = value;
  }

  delete(id: number): boolean {
    const index = id >> PAGE_BITS;
    const page = this.#pages[index];
    const slot = id & PAGE_MASK;
    if (page === undefined || page.slots[slot] === undefined) return false;
    page.slots[slot] = undefined;
    this.#size--;
    if (--page.used === 0 && index !== this.#current) this.#pages[index] = undefined;
    return true;
  }

  clear(): void {
    this.#pages.fill(undefined);
    this.#size = 0;
  }

  /** Every entry with its id, in the order the entries' `seq` gives (the order they were sent in). */
  inOrder(): Array<[number, T]> {
    const entries: Array<[number, T]> = [];
    for (let index = 0; index < PAGES; index++) {
      const page = this.#pages[index];
      if (page === undefined) continue;
      for (let slot = 0; slot < PAGE_SIZE; slot++) {
        const value = page.slots[slot];
        if (value !== undefined) entries.push([(index << PAGE_BITS) | slot, value]);
      }
    }
    return entries.sort((a, b) => a[1].seq - b[1].seq);
  }
}
