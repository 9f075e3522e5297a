//! The bot's notices: files it cannot take, refusals and limits, failures, `!delete` and
//! `!forget-me`, `!cancel`, the marks on answers, and commands it cannot read.

use super::{shown, usage, Texts};
use crate::command::ParseError;
use crate::config::Lang;
use lambda_matrix_core::{Chat, ChatId, NameError, MAX_NAME_CHARS};

impl Texts {
    /// A non-text message.
    pub fn text_only(&self) -> String {
        self.pick(
            "I understand text only for now.",
            "Пока я понимаю только текст.",
        )
    }

    /// An attachment over `MATRIX_MAX_ATTACHMENT_BYTES`, of `size` if known (a download
    /// stopped at the bound does not know it).
    pub fn attachment_too_big(&self, size: Option<u64>, max: u64) -> String {
        let max = self.size(max);
        match (self.lang, size.map(|size| self.size(size))) {
            (Lang::En, Some(size)) => {
                format!("This file is too big for me: {size}; the largest I take is {max}.")
            }
            (Lang::En, None) => {
                format!("This file is too big for me: the largest I take is {max}.")
            }
            (Lang::Ru, Some(size)) => {
                format!("Этот файл слишком большой для меня: {size}; я принимаю не больше {max}.")
            }
            (Lang::Ru, None) => {
                format!("Этот файл слишком большой для меня: я принимаю не больше {max}.")
            }
        }
    }

    /// A size in bytes, for a person.
    pub(super) fn size(&self, bytes: u64) -> String {
        const KIB: u64 = 1024;
        const MIB: u64 = 1024 * 1024;
        let (en, ru) = if bytes >= MIB {
            let mib = format!("{:.1}", bytes as f64 / MIB as f64);
            (format!("{mib} MB"), format!("{} МБ", mib.replace('.', ",")))
        } else if bytes >= KIB {
            let kib = bytes.div_ceil(KIB);
            (format!("{kib} KB"), format!("{kib} КБ"))
        } else {
            (format!("{bytes} bytes"), format!("{bytes} байт"))
        };
        self.pick(&en, &ru)
    }

    /// An attachment event without a usable media URL.
    pub fn attachment_missing(&self) -> String {
        self.pick(
            "This message has no file I can fetch (its link is missing or broken). Please send the file again.",
            "В этом сообщении нет файла, который я могу получить (ссылка отсутствует или неверна). Пожалуйста, отправьте файл ещё раз.",
        )
    }

    /// The media repository (or the server the file is on) did not deliver an attachment.
    pub fn attachment_unreachable(&self) -> String {
        self.pick(
            "I could not fetch this file from the server. Please try again later or send it again.",
            "Не удалось получить этот файл с сервера. Попробуйте позже или отправьте его ещё раз.",
        )
    }

    /// A video.
    pub fn cannot_watch_videos(&self) -> String {
        self.pick(
            "I can't watch videos. Send a picture, a voice message, a text file or text instead.",
            "Я не умею смотреть видео. Пришлите картинку, голосовое сообщение, текстовый файл или текст.",
        )
    }

    /// An image for a platform that cannot see.
    pub fn cannot_see_images(&self) -> String {
        self.pick(
            "This model can't read images. Please describe it in text.",
            "Эта модель не умеет читать картинки. Пожалуйста, опишите её текстом.",
        )
    }

    /// Audio or a voice message for a platform that cannot listen.
    pub fn cannot_hear_audio(&self) -> String {
        self.pick(
            "This model can't listen to audio or voice messages. Please write it as text.",
            "Эта модель не умеет слушать аудио и голосовые сообщения. Пожалуйста, напишите текстом.",
        )
    }

    /// A file of a type the platform cannot read (PDF, archives, binaries, …).
    pub fn cannot_read_file_type(&self) -> String {
        self.pick(
            "I can't read this kind of file. Text files (plain text, Markdown, CSV, JSON, source code) work; PDF and other documents don't yet.",
            "Я не умею читать такие файлы. Текстовые файлы (обычный текст, Markdown, CSV, JSON, код) подходят; PDF и другие документы пока нет.",
        )
    }

    /// A message the bot could not decrypt.
    pub fn could_not_decrypt(&self) -> String {
        self.pick(
            "I could not decrypt this message (I do not have its keys). Please send it again.",
            "Не удалось расшифровать это сообщение (у меня нет его ключей). Пожалуйста, отправьте его ещё раз.",
        )
    }

    /// A plain message in the direct chat.
    pub fn dm_hint(&self) -> String {
        self.pick(
            "Write in one of your chat rooms to talk, or use a command here. `!help` lists them.",
            "Пишите в комнатах чатов, а здесь — команды. `!help` покажет их.",
        )
    }

    /// The platform failed.
    pub fn platform_failed(&self) -> String {
        self.pick(
            "Sorry, I could not answer that just now. Please try again.",
            "Извините, сейчас не получилось ответить. Попробуйте ещё раз.",
        )
    }

    /// The platform took too long.
    pub fn platform_timeout(&self) -> String {
        self.pick(
            "Sorry, that took too long and I gave up. Please try again.",
            "Извините, ответ занял слишком много времени. Попробуйте ещё раз.",
        )
    }

    /// A command needs a chat id here (not given in a chat room).
    pub fn needs_chat_id(&self, example: &str) -> String {
        match self.lang {
            Lang::En => format!("Which chat? Here, name it: `{example}`."),
            Lang::Ru => format!("Какой чат? Здесь укажите его: `{example}`."),
        }
    }

    /// No such chat of the speaker.
    pub fn no_such_chat(&self, id: ChatId) -> String {
        match self.lang {
            Lang::En => format!("You have no chat {id}. `!chats` lists yours."),
            Lang::Ru => format!("У вас нет чата {id}. `!chats` покажет ваши чаты."),
        }
    }

    /// Archiving an archived chat.
    pub fn already_archived(&self, id: ChatId) -> String {
        match self.lang {
            Lang::En => format!("{id} is already archived."),
            Lang::Ru => format!("Чат {id} уже в архиве."),
        }
    }

    /// Unarchiving an active chat.
    pub fn not_archived(&self, id: ChatId) -> String {
        match self.lang {
            Lang::En => format!("{id} is not archived."),
            Lang::Ru => format!("Чат {id} не в архиве."),
        }
    }

    /// Too many chats.
    pub fn too_many_chats(&self, max: u32) -> String {
        match self.lang {
            Lang::En => format!("You have reached the limit of {max} chats. Archive is not deletion, so this counts archived chats too."),
            Lang::Ru => format!("Достигнут предел в {max} чатов (архивные тоже считаются)."),
        }
    }

    /// A message over `MATRIX_MAX_MESSAGES_PER_MINUTE` (`max`): not answered.
    pub fn too_many_messages(&self, max: u32) -> String {
        match self.lang {
            Lang::En => format!(
                "You are writing faster than {max} messages a minute, so this one was not answered. Please wait a moment and send it again."
            ),
            Lang::Ru => format!(
                "Вы пишете чаще {max} сообщений в минуту, поэтому на это я не ответил. Подождите немного и отправьте его ещё раз."
            ),
        }
    }

    /// An invite into a room with other people (not a direct chat): the bot says so and leaves.
    pub fn group_room(&self) -> String {
        self.pick(
            "I work in direct chats and in your own Space, not in rooms with other people, so I am leaving this one. Write to me directly.",
            "Я работаю в личных чатах и в вашем собственном пространстве, а не в комнатах с другими людьми, поэтому из этой я выхожу. Напишите мне напрямую.",
        )
    }

    /// Someone else joined or was invited into `owner`'s room: the bot answers only its owner.
    pub fn only_owner(&self, owner: &str) -> String {
        let owner = crate::render::escape_markdown(owner);
        match self.lang {
            Lang::En => format!(
                "I answer only {owner} in this room. Anyone else: write to me directly to get chats of your own."
            ),
            Lang::Ru => format!(
                "В этой комнате я отвечаю только {owner}. Остальным: напишите мне напрямую, чтобы получить свои чаты."
            ),
        }
    }

    /// A direct chat over `MATRIX_MAX_DMS_PER_USER` (`max`): the bot leaves it.
    pub fn too_many_dms(&self, max: u32) -> String {
        match self.lang {
            Lang::En => format!(
                "You already have {max} direct chats with me, so I am leaving this one. Write to me in one of the others."
            ),
            Lang::Ru => format!(
                "У вас уже {max} личных чатов со мной, поэтому из этого я выхожу. Пишите мне в одном из других."
            ),
        }
    }

    /// Said once to a person removed from `MATRIX_ALLOWED_USERS`; then the bot is silent.
    pub fn no_longer_allowed(&self) -> String {
        self.pick(
            "You no longer have access to this bot, so I will not answer here. Your chats are kept; ask the operator if you think this is a mistake.",
            "У вас больше нет доступа к этому боту, поэтому здесь я отвечать не буду. Ваши чаты сохранены; если это ошибка, обратитесь к администратору.",
        )
    }

    /// Too many new chats too fast.
    pub fn slow_down(&self, max: u32) -> String {
        match self.lang {
            Lang::En => {
                format!("At most {max} new chats per minute. Please wait a moment and try again.")
            }
            Lang::Ru => {
                format!("Не больше {max} новых чатов в минуту. Подождите немного и повторите.")
            }
        }
    }

    /// The person has no Space (yet): nothing to act on.
    pub fn no_space(&self) -> String {
        self.pick(
            "I have no space for you yet. Invite me to a direct chat to get started.",
            "У меня ещё нет пространства для вас. Пригласите меня в личный чат, чтобы начать.",
        )
    }

    /// The room is not one the bot can place.
    pub fn unknown_room(&self) -> String {
        self.pick(
            "I do not know this room. Use your direct chat with me or one of your chat rooms.",
            "Я не знаю эту комнату. Пишите мне в личном чате или в комнатах ваших чатов.",
        )
    }

    /// Something failed on the bot's side while doing a command.
    pub fn command_failed(&self) -> String {
        self.pick(
            "Sorry, that did not work because of a problem on my side. Please try again in a moment.",
            "Извините, не получилось из-за проблемы на моей стороне. Попробуйте чуть позже.",
        )
    }

    /// `!delete` without `confirm`: what will happen and how to go ahead.
    pub fn delete_ask(&self, chat: &Chat) -> String {
        match self.lang {
            Lang::En => format!(
                "This deletes {} **{}**: I remove it from your space, leave the room and forget \
                 it. The room and its messages stay with you. To go ahead, send `!delete {} confirm`.",
                chat.id, shown(&chat.name), chat.id
            ),
            Lang::Ru => format!(
                "Это удалит чат {} **{}**: я уберу его из пространства, выйду из комнаты и забуду её. \
                 Комната и сообщения останутся у вас. Чтобы продолжить, отправьте `!delete {} confirm`.",
                chat.id, shown(&chat.name), chat.id
            ),
        }
    }

    /// A chat was deleted (said before the bot leaves it).
    pub fn deleted(&self, chat: &Chat) -> String {
        match self.lang {
            Lang::En => format!(
                "Deleted {} **{}**: it is out of your space and I am leaving the room now.",
                chat.id,
                shown(&chat.name)
            ),
            Lang::Ru => format!(
                "Чат {} **{}** удалён: он убран из пространства, и я выхожу из комнаты.",
                chat.id,
                shown(&chat.name)
            ),
        }
    }

    /// `!forget-me` without `confirm`.
    pub fn forget_ask(&self, chats: usize) -> String {
        match self.lang {
            Lang::En => format!(
                "This erases everything I hold about you: your space, your {chats} chat(s) and our \
                 direct chat. I leave all of them; the rooms and messages stay with you. If you \
                 write to me again later, you start from scratch. To go ahead, send \
                 `!forget-me confirm`."
            ),
            Lang::Ru => format!(
                "Это сотрёт всё, что я о вас храню: пространство, ваши чаты ({chats}) и наш личный \
                 чат. Я выйду из всех этих комнат; комнаты и сообщения останутся у вас. Если \
                 напишете мне снова, всё начнётся с нуля. Чтобы продолжить, отправьте \
                 `!forget-me confirm`."
            ),
        }
    }

    /// `!forget-me confirm` (said before the bot leaves).
    pub fn forgotten(&self) -> String {
        self.pick(
            "Done: I erased what I held about you and I am leaving your rooms now. Goodbye!",
            "Готово: я стёр всё, что хранил о вас, и выхожу из ваших комнат. До свидания!",
        )
    }

    /// The reply to a message whose answer `!cancel` stopped.
    pub fn answer_cancelled(&self) -> String {
        self.pick(
            "Stopped: you cancelled this answer.",
            "Остановлено: вы отменили этот ответ.",
        )
    }

    /// `!cancel` stopped `n` pending answers.
    pub fn cancel_done(&self, n: usize) -> String {
        match self.lang {
            Lang::En => format!("Cancelled {n} pending answer(s)."),
            Lang::Ru => format!("Отменено ответов: {n}."),
        }
    }

    /// `!cancel` with nothing pending.
    pub fn nothing_to_cancel(&self) -> String {
        self.pick(
            "Nothing to cancel: I am not working on an answer here.",
            "Отменять нечего: я сейчас ничего здесь не отвечаю.",
        )
    }

    /// The first line of a fresh answer to a message edited after it was answered.
    pub fn edited_answer_heading(&self) -> String {
        self.pick(
            "*Answer to your edited message:*",
            "*Ответ на исправленное сообщение:*",
        )
    }

    /// The platform is rate limiting.
    pub fn platform_busy(&self) -> String {
        self.pick(
            "Sorry, the answering service is busy right now. Please try again in a minute.",
            "Извините, сервис ответов сейчас перегружен. Попробуйте через минуту.",
        )
    }

    /// The platform refused the request (its settings are wrong).
    pub fn platform_misconfigured(&self) -> String {
        self.pick(
            "Sorry, I cannot answer: the answering service refused my request. The bot's operator has to fix its settings.",
            "Извините, не могу ответить: сервис ответов отклонил запрос. Оператору бота нужно исправить настройки.",
        )
    }

    /// The platform could not be reached.
    pub fn platform_unavailable(&self) -> String {
        self.pick(
            "Sorry, the answering service is unavailable right now. Please try again later.",
            "Извините, сервис ответов сейчас недоступен. Попробуйте позже.",
        )
    }

    /// The mark on a streamed answer that is still being written.
    pub fn answer_in_progress(&self) -> String {
        self.pick("*…still writing*", "*…ещё пишу*")
    }

    /// The mark under the text of a streamed answer the person stopped (`!cancel`, 🛑).
    pub fn answer_stopped(&self) -> String {
        self.pick(
            "*(stopped here, as you asked)*",
            "*(остановлено здесь, как вы просили)*",
        )
    }

    /// The mark on a streamed answer that was cut off (a crash or a failure mid-answer).
    pub fn answer_interrupted(&self) -> String {
        self.pick(
            "*(this answer was interrupted; the full answer follows)*",
            "*(этот ответ прервался; полный ответ ниже)*",
        )
    }

    /// The note under an answer cut at `LAMBDA_MAX_ANSWER_CHARS` (`max`).
    pub fn answer_cut(&self, max: usize) -> String {
        match self.lang {
            Lang::En => format!("*(the answer was cut here: it was longer than {max} characters)*"),
            Lang::Ru => format!("*(ответ обрезан здесь: он длиннее {max} символов)*"),
        }
    }

    /// A command that could not be parsed.
    pub fn parse_error(&self, error: &ParseError) -> String {
        match (error, self.lang) {
            (ParseError::Unknown(word), Lang::En) => {
                format!(
                    "I do not know the command !{}. `!help` lists the commands.",
                    shown(word)
                )
            }
            (ParseError::Unknown(word), Lang::Ru) => {
                format!("Не знаю команду !{}. `!help` покажет список.", shown(word))
            }
            (ParseError::MissingArgument(word), Lang::En) => {
                format!("`!{word}` needs more. {}", usage(word, Lang::En))
            }
            (ParseError::MissingArgument(word), Lang::Ru) => {
                format!("`!{word}`: не хватает аргумента. {}", usage(word, Lang::Ru))
            }
            (ParseError::UnexpectedArgument(word @ ("delete" | "forget-me")), lang) => {
                usage(word, lang)
            }
            (ParseError::UnexpectedArgument(word), Lang::En) => {
                format!("`!{word}` takes nothing after it.")
            }
            (ParseError::UnexpectedArgument(word), Lang::Ru) => {
                format!("После `!{word}` ничего не нужно.")
            }
            (ParseError::BadChatId(text), Lang::En) => {
                format!(
                    "{} is not a chat id; they look like C1, C2, ...",
                    shown(text)
                )
            }
            (ParseError::BadChatId(text), Lang::Ru) => {
                format!(
                    "{} — не номер чата; они выглядят как C1, C2, ...",
                    shown(text)
                )
            }
            (ParseError::BadName(NameError::Empty), Lang::En) => "The name is empty.".to_owned(),
            (ParseError::BadName(NameError::Empty), Lang::Ru) => "Название пустое.".to_owned(),
            (ParseError::BadName(NameError::TooLong { chars }), Lang::En) => {
                format!("The name has {chars} characters; at most {MAX_NAME_CHARS} are allowed.")
            }
            (ParseError::BadName(NameError::TooLong { chars }), Lang::Ru) => {
                format!("В названии {chars} символов; можно не больше {MAX_NAME_CHARS}.")
            }
            (ParseError::TooLong, Lang::En) => "That command is too long.".to_owned(),
            (ParseError::TooLong, Lang::Ru) => "Команда слишком длинная.".to_owned(),
        }
    }
}
