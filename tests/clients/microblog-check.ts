// Compiled by tests/test_generated_clients.py (tsc --noEmit --strict) beside the types that
// openapi-typescript generates from the microblog's document (./microblog.ts): the types
// accept real requests and responses, and refuse what the API refuses.
import type { components, operations, paths } from "./microblog";

type Schemas = components["schemas"];

export const user: Schemas["users"] = {
  id: 1,
  name: "jane",
  email: "jane@example.com",
  created_at: "2024-01-02T03:04:05.000006+00:00",
  updated_at: "2024-01-02T03:04:05.000006+00:00",
};

export const signUp: Schemas["users.create"] = {
  name: "jane",
  email: "jane@example.com",
  password: "a-long-secret",
};

export const signUps: Schemas["users.create.one_or_many"] = [signUp, { ...signUp, name: "john" }];

export const credentials: Schemas["Credentials"] = { name: "jane", password: "a-long-secret" };

export const token: Schemas["Token"] = {
  access_token: "opaque",
  token_type: "bearer",
  expires_in: 3600,
};

export const page: paths["/messages"]["get"]["responses"][200]["content"]["application/json"] = {
  items: [{ id: 1, content: "Hello", author: { ...user } }, { id: 2, author: null }],
  count: 2,
  count_kind: "exact",
  limit: 20,
  offset: null,
  cursor: null,
  next: null,
};

export const filters: NonNullable<operations["list_messages"]["parameters"]["query"]> = {
  content__like: "%hello%",
  user_id__in: [1, 2],
  sort: ["-created_at", "id"],
  fields: ["id", "content"],
  include: ["author"],
  limit: 10,
};

export const query: Schemas["messages.query"] = {
  where: {
    or: [{ content: { like: "%hello%" } }, { "author.name": "jane" }],
    not: { user_id: { in: [1, 2] } },
  },
  order_by: ["-created_at", "id"],
  include: ["author"],
  limit: 10,
};

export const problem: Schemas["Problem"] = {
  type: "about:blank",
  title: "Conflict",
  status: 409,
  detail: "A users item with this name exists.",
  errors: [{ field: "name", message: "This name is taken." }],
};

export type Created =
  paths["/users/{key}/messages"]["post"]["responses"][201]["content"]["application/json"];
export const created: Created = [{ id: 1, content: "Hello", user_id: 1,
  created_at: "2024-01-02T03:04:05+00:00", updated_at: "2024-01-02T03:04:05+00:00" }];

// @ts-expect-error: a password never leaves the server
export const leaked: Schemas["users"]["password"] = "secret";

// @ts-expect-error: sort keys are the fields, with or without a minus
export const badSort: Schemas["users.sort_key"] = "password";

// @ts-expect-error: a token is a bearer token
export const badToken: Schemas["Token"]["token_type"] = "basic";
