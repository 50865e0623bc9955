"""What Flask-Security says on Tandem's account pages, in Tandem's voice: sentence case, and
each message says what to do next. Set as SECURITY_MSG_<NAME> (the library's documented way
to change its messages); `%(email)s`, `%(within)s` and `%(length)s` are filled in by it.
"""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    # Signing in and being sent to sign in.
    "LOGIN": ("Please sign in to see this page.", "info"),
    "UNAUTHENTICATED": ("Please sign in to see this page.", "error"),
    "UNAUTHORIZED": ("Your account cannot open this page.", "error"),
    "REFRESH": ("For your security, enter your password again to continue.", "info"),
    "REAUTHENTICATION_SUCCESSFUL": ("Thank you: you can carry on.", "info"),
    "ANONYMOUS_USER_REQUIRED": (
        "You are already signed in. Sign out first to use another account.",
        "error",
    ),
    "INVALID_REDIRECT": ("Tandem only sends you on to its own pages.", "error"),
    "USER_DOES_NOT_EXIST": (
        "No Tandem account uses this email address. Check it for typos, or sign up.",
        "error",
    ),
    "INVALID_PASSWORD": ("That password is not right. Check it and try again.", "error"),
    "PASSWORD_MISMATCH": ("That password is not right. Check it and try again.", "error"),
    "INVALID_PASSWORD_CODE": (
        "That password or code is not right. Check it and try again.",
        "error",
    ),
    "CONFIRMATION_REQUIRED": (
        "Please confirm your email first: follow the link we sent you.",
        "error",
    ),
    "DISABLED_ACCOUNT": (
        "This account is suspended. Contact an administrator if you think this is a mistake.",
        "error",
    ),
    "FORGOT_PASSWORD": ("Forgot your password?", "info"),
    # One answer for an unknown address and a wrong password: sign-in tells nobody which
    # addresses have accounts.
    "GENERIC_AUTHN_FAILED": (
        "That email address and password do not match a Tandem account. Check both and try "
        "again, or choose a new password with “Forgot your password?”.",
        "error",
    ),
    # Fields.
    "EMAIL_NOT_PROVIDED": ("Enter your email address, e.g. ada@example.com.", "error"),
    "INVALID_EMAIL_ADDRESS": (
        "Enter your whole email address, with an @, e.g. ada@example.com.",
        "error",
    ),
    "PASSWORD_NOT_PROVIDED": ("Enter your password.", "error"),
    "PASSWORD_INVALID_LENGTH": (
        "Use at least %(length)s characters (and at most 128), "
        "e.g. four unrelated words you can remember.",
        "error",
    ),
    "PASSWORD_TOO_SIMPLE": (
        "This password is easy to guess. Choose something longer and less predictable, "
        "e.g. four unrelated words.",
        "error",
    ),
    "PASSWORD_BREACHED": (
        "This password has appeared in a data breach. Choose another one.",
        "error",
    ),
    "RETYPE_PASSWORD_MISMATCH": (
        "The two passwords differ. Type the same password in both fields.",
        "error",
    ),
    "PASSWORD_IS_THE_SAME": ("Choose a new password that differs from the current one.", "error"),
    "EMAIL_ALREADY_ASSOCIATED": (
        "%(email)s already has a Tandem account. Sign in, or reset its password if you forgot it.",
        "error",
    ),
    # Signing up and confirming the address.
    "CONFIRM_REGISTRATION": (
        "Almost done: we sent a link to %(email)s. Open it to confirm your email address, "
        "then sign in.",
        "success",
    ),
    "EMAIL_CONFIRMED": ("Your email address is confirmed. Sign in to start.", "success"),
    "ALREADY_CONFIRMED": ("Your email address is already confirmed: sign in.", "info"),
    "INVALID_CONFIRMATION_TOKEN": (
        "This confirmation link is not valid. Ask for a new one below.",
        "error",
    ),
    "CONFIRMATION_EXPIRED": (
        "This confirmation link expired after %(within)s. We sent a new one to %(email)s.",
        "error",
    ),
    # The next two are said whether or not the address has an account (nobody learns which
    # addresses do), so they say what happens if it has one.
    "CONFIRMATION_REQUEST": (
        "If %(email)s has a Tandem account waiting for confirmation, we sent it a new link. "
        "It can take a few minutes; check your spam folder too.",
        "info",
    ),
    # Forgotten and changed passwords.
    "PASSWORD_RESET_REQUEST": (
        "If %(email)s has a Tandem account, we sent it a link to choose a new password. "
        "It works once; check your spam folder too.",
        "info",
    ),
    "PASSWORD_RESET_EXPIRED": (
        "This reset link expired after %(within)s. We sent a new one to %(email)s.",
        "error",
    ),
    "INVALID_RESET_PASSWORD_TOKEN": (
        "This reset link is not valid or was already used. Ask for a new one below.",
        "error",
    ),
    "PASSWORD_RESET": ("Your password is changed and you are signed in.", "success"),
    "PASSWORD_RESET_NO_LOGIN": (
        "Your password is changed. Sign in with your new password.",
        "success",
    ),
    "PASSWORD_CHANGE": ("Your password is changed. We emailed you to say so.", "success"),
    # Two-factor sign-in.
    "INVALID_CODE": ("That code is not right. Enter the code your app shows now.", "error"),
    "TWO_FACTOR_INVALID_TOKEN": (
        "That code is not right. Enter the six digits your app shows now; they change "
        "every 30 seconds.",
        "error",
    ),
    "TWO_FACTOR_LOGIN_SUCCESSFUL": ("Code accepted: you are signed in.", "success"),
    "TWO_FACTOR_CHANGE_METHOD_SUCCESSFUL": (
        "Two-factor sign-in is on. From now on Tandem asks for a code from your app when "
        "you sign in.",
        "success",
    ),
    "TWO_FACTOR_DISABLED": (
        "Two-factor sign-in is off: your password alone opens your account.",
        "success",
    ),
    "TWO_FACTOR_METHOD_NOT_AVAILABLE": ("Choose how you want to get your codes.", "error"),
    "TWO_FACTOR_PERMISSION_DENIED": (
        "Sign in again to change two-factor sign-in.",
        "error",
    ),
    "TWO_FACTOR_SETUP_EXPIRED": (
        "Setting up took longer than %(within)s. Please start again.",
        "error",
    ),
    "CODE_HAS_BEEN_SENT": ("We sent you a code. Enter it above.", "info"),
    "FAILED_TO_SEND_CODE": (
        "We could not send the code. Try again in a few minutes.",
        "error",
    ),
}
