// The admin token for staff and admin pages: typed into a form, kept in this tab's
// sessionStorage, sent only as "Authorization: Bearer" by fetch (never in a URL).

const KEY = "holdsvc:admin-token";

export function storedToken() {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function storeToken(token) {
  sessionStorage.setItem(KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

// Shows the login form until a token is accepted by `check(token)` (an API call that answers
// {ok, problem}); then calls `start(token)`.
export function login({ check, start, say, describe }) {
  const section = document.getElementById("login");
  const form = document.getElementById("login-form");
  const input = document.getElementById("admin-token");
  const app = document.getElementById("app");

  function show() {
    app.hidden = true;
    section.hidden = false;
    input.value = "";
    input.focus();
  }

  // Why a token is refused, in words (401: not a token; 403: a token that may not do this).
  function refusal(problem) {
    if (problem.code === "unauthorized") return "That token was not accepted. Please check it and try again.";
    if (problem.code === "forbidden") {
      return "That token is valid, but it does not allow this page (a staff token works only for its own venue, within its role).";
    }
    return describe(problem);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      say("Please enter the admin token.", "error");
      input.focus();
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const result = await check(token);
    button.disabled = false;
    if (!result.ok) {
      input.setAttribute("aria-invalid", "true");
      say(refusal(result.problem), "error");
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    storeToken(token);
    section.hidden = true;
    app.hidden = false;
    say("Signed in.", "success");
    start(token);
  });

  const token = storedToken();
  if (token) {
    section.hidden = true;
    app.hidden = false;
    // The tab's token may be one this page does not take (a staff token on the admin page,
    // or one revoked since): ask first. Offline, start anyway (the staff page reads its cache).
    check(token).then((result) => {
      if (result.ok || ![401, 403].includes(result.status)) {
        start(token);
        return;
      }
      forgetToken();
      show();
      say(refusal(result.problem), "error");
    });
  } else {
    show();
  }
  return { show };
}
