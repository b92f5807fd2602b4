// Placeholder: the package is private until its issue lands; see README.md.
export {}
