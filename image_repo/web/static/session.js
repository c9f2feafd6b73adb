// Who is signed in (from GET /me), and what their key may do.

export const session = { me: null };

export const can = (permission) =>
  Boolean(session.me && session.me.permissions.includes(permission));

// The images the current grid shows, in order: the image page's arrows walk it.
export const browsing = { ids: [], back: "#/" };

