/**
 * The few things that differ between the SQL databases the store runs on. Everything else in the
 * store (schema, migrations, queries) is written once against Kysely and these traits.
 */

export interface DialectTraits {
  readonly name: 'sqlite' | 'postgres';
  /** Column type for raw bytes. */
  readonly bytesType: 'blob' | 'bytea';
  /** The driver error for a violated primary key or unique constraint. */
  isUniqueViolation(error: unknown): boolean;
  /** The driver error for a violated foreign key. */
  isForeignKeyViolation(error: unknown): boolean;
}

const errorCode = (error: unknown): unknown =>
  typeof error === 'object' && error !== null && 'code' in error ? (error as { code: unknown }).code : undefined;

export const SQLITE: DialectTraits = {
  name: 'sqlite',
  bytesType: 'blob',
  isUniqueViolation: (e) => {
    const code = errorCode(e);
    return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
  },
  isForeignKeyViolation: (e) => errorCode(e) === 'SQLITE_CONSTRAINT_FOREIGNKEY',
};

/** SQLSTATE classes 23505 (unique_violation) and 23503 (foreign_key_violation), as pg reports them. */
export const POSTGRES: DialectTraits = {
  name: 'postgres',
  bytesType: 'bytea',
  isUniqueViolation: (e) => errorCode(e) === '23505',
  isForeignKeyViolation: (e) => errorCode(e) === '23503',
};
