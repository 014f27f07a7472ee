import { Schema, type Connection, type InferSchemaType, type Model } from 'mongoose';

export const ROLES = ['coordinator', 'reviewer'] as const;
export type Role = (typeof ROLES)[number];

/**
 * A person who signs in: a coordinator (everything) or a reviewer of the
 * working group (aggregate evidence only). Passwords are kept as Argon2id hashes.
 */
const userSchema = new Schema(
  {
    name: { type: String, required: true, trim: true, maxlength: 200 },
    /** Stored lower-cased; one account per address. */
    email: { type: String, required: true, lowercase: true, trim: true, maxlength: 254, unique: true },
    role: { type: String, enum: ROLES, required: true },
    passwordHash: { type: String, required: true },
    /** A disabled user can no longer sign in; their open sessions end at the next request. */
    disabledAt: { type: Date },
    /**
     * Set when someone else chose the password (a coordinator adding the user on
     * the page or with users:add): it works for one sign-in, after which the
     * user must set their own before reaching any other page.
     */
    passwordExpired: { type: Boolean },
    passwordChangedAt: { type: Date },
  },
  { timestamps: true },
);

export type User = InferSchemaType<typeof userSchema>;
export type UserModel = Model<User>;

export function defineUserModel(connection: Connection): UserModel {
  return connection.model('User', userSchema, 'users');
}
