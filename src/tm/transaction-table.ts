/**
 * The transaction table behind a small interface: one process keeps it in Maps; several
 * worker processes would each own the transactions whose key hashes to them.
 */
export interface TransactionTable<T> {
  get(key: string): T | undefined;
  set(key: string, value: T): void;
  delete(key: string): void;
  readonly size: number;
  values(): IterableIterator<T>;
}

export class MapTable<T> implements TransactionTable<T> {
  private readonly map = new Map<string, T>();
  get(key: string): T | undefined {
    return this.map.get(key);
  }
  set(key: string, value: T): void {
    this.map.set(key, value);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  get size(): number {
    return this.map.size;
  }
  values(): IterableIterator<T> {
    return this.map.values();
  }
}
