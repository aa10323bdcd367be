"""The Amazon States Language itself: paths, payload templates, intrinsic functions, JSONata, Choice rules,
timestamps, the Express limits on data, and definition validation with a JSON pointer per problem.

Pure functions over JSON values. Imports nothing from the rest of express (no engine, no I/O).
"""
